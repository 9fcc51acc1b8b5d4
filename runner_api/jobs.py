"""Job records: what was asked, by whom, and what became of it. Redis hashes, one per job."""

import json
import uuid
from enum import StrEnum

from runner_api import store


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


MAX_SCAN = 5000
JSON_FIELDS = ("variables", "limit", "nodes", "node_ids", "stats", "submitted_by")
INT_FIELDS = ("timeout", "changed", "rc")
FLOAT_FIELDS = ("created_at", "started_at", "finished_at")
PUBLIC = ("id", "tenant", "playbook", "status", "reason", "waiting", "variables", "limit", "nodes", "timeout",
          "created_at", "started_at", "finished_at", "changed", "rc", "stats", "submitted_by", "correlation_id",
          "worker", "journal", "cluster", "stage", "project")


def new_id() -> str:
    return str(uuid.uuid4())


def encode(fields: dict) -> dict:
    return {k: json.dumps(v) if k in JSON_FIELDS else ("" if v is None else v) for k, v in fields.items()}


def decode(raw: dict) -> dict:
    job = {}
    for key, value in raw.items():
        if key in JSON_FIELDS:
            job[key] = json.loads(value) if value else None
        elif key in INT_FIELDS:
            job[key] = int(value) if value not in ("", None) else None
        elif key in FLOAT_FIELDS:
            job[key] = float(value) if value not in ("", None) else None
        else:
            job[key] = value if value != "" else None
    return job


def public(job: dict) -> dict:
    view = {key: job.get(key) for key in PUBLIC}
    view["duration"] = (job["finished_at"] - job["started_at"]) if job.get("finished_at") and job.get(
        "started_at") else None
    return view


class JobStore:
    def __init__(self, redis):
        self.redis = redis

    def create(self, pipe, job: dict) -> None:
        pipe.hset(store.job_key(job["id"]), mapping=encode(job))
        pipe.zadd(store.tenant_jobs(job["tenant"]), {job["id"]: job["created_at"]})
        pipe.zadd(store.ALL_JOBS, {job["id"]: job["created_at"]})

    def get(self, job_id: str) -> dict | None:
        raw = self.redis.hgetall(store.job_key(job_id))
        return decode(raw) if raw else None

    def get_many(self, job_ids: list[str]) -> list[dict]:
        pipe = self.redis.pipeline()
        for job_id in job_ids:
            pipe.hgetall(store.job_key(job_id))
        return [decode(raw) for raw in pipe.execute() if raw]

    def update(self, job_id: str, pipe=None, **fields) -> None:
        (pipe or self.redis).hset(store.job_key(job_id), mapping=encode(fields))

    def page(self, tenant: str | None, offset: int, limit: int, status: str | None = None,
             playbook: str | None = None) -> tuple[list[dict], int]:
        """Newest first. A filtered page looks at no more than MAX_SCAN of the newest jobs, so a rare
        filter over a long history costs a bounded number of reads per request."""
        key = store.tenant_jobs(tenant) if tenant else store.ALL_JOBS
        if not status and not playbook:
            ids = self.redis.zrevrange(key, offset, offset + limit - 1)
            return self.get_many(ids), self.redis.zcard(key)
        matched, position, batch = [], 0, max(limit * 4, 200)
        skipped = 0
        while len(matched) < limit and position < MAX_SCAN:
            ids = self.redis.zrevrange(key, position, position + batch - 1)
            if not ids:
                break
            position += batch
            for job in self.get_many(ids):
                if (status and job.get("status") != status) or (playbook and job.get("playbook") != playbook):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                matched.append(job)
                if len(matched) == limit:
                    break
        return matched, -1

    def expire(self, job_id: str, tenant: str, pipe) -> None:
        for key in (store.job_key(job_id), store.job_events(job_id), store.job_alive(job_id)):
            pipe.delete(key)
        pipe.zrem(store.tenant_jobs(tenant), job_id)
        pipe.zrem(store.ALL_JOBS, job_id)
