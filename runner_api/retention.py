"""Retention: finished jobs older than the policy lose their artifacts, events and records."""

import shutil
import time

from runner_api import store
from runner_api.jobs import JobStatus, JobStore


def prune(settings, redis, now: float | None = None) -> list[str]:
    cutoff = (now or time.time()) - settings.retention_hours * 3600
    jobs = JobStore(redis)
    pruned = []
    for job_id in redis.zrangebyscore(store.ALL_JOBS, "-inf", cutoff):
        job = jobs.get(job_id)
        if job and not JobStatus(job["status"]).finished:
            continue  # never prune what is still queued or running
        shutil.rmtree(settings.jobs_dir / job_id, ignore_errors=True)
        pipe = redis.pipeline()
        jobs.expire(job_id, job["tenant"] if job else "", pipe)
        pipe.execute()
        pruned.append(job_id)
    return pruned
