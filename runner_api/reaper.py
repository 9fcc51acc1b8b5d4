"""Finds jobs whose worker vanished (no heartbeat) and settles them: nothing stays locked or lost.

A job admitted but never started goes back to the front of its queue; a running job is marked
failed with the reason, its node locks and concurrency slot released.
"""

import logging
import time

from runner_api import metrics, store
from runner_api.admission import Admission
from runner_api.events import END, EventLog
from runner_api.jobs import JobStatus, JobStore

log = logging.getLogger(__name__)


def reap(redis, default_concurrency: int) -> list[str]:
    admission = Admission(redis, default_concurrency)
    jobs = JobStore(redis)
    settled = []
    for tenant in sorted(redis.smembers(store.TENANTS)):
        for job_id in redis.smembers(store.running(tenant)):
            if redis.exists(store.job_alive(job_id)):
                continue
            # One reaper per job: others skip it for a minute.
            if not redis.set(f"{store.job_key(job_id)}:reaping", 1, nx=True, ex=60):
                continue
            _settle(redis, admission, jobs, tenant, job_id)
            settled.append(job_id)
    return settled


def _settle(redis, admission: Admission, jobs: JobStore, tenant: str, job_id: str) -> None:
    job = jobs.get(job_id)
    admission.release(tenant, job_id)
    if job is None or JobStatus(job["status"]).finished:
        return
    if job["status"] == JobStatus.QUEUED:
        log.warning("job %s was admitted by worker %s, which vanished before starting it; requeued",
                    job_id, job.get("worker"))
        pipe = redis.pipeline()
        jobs.update(job_id, pipe=pipe, waiting=f"requeued: worker {job.get('worker')} vanished")
        pipe.hdel(store.job_key(job_id), "worker")
        pipe.lpush(f"rq:queue:{store.queue_name(tenant)}", job_id)
        pipe.execute()
        return
    fail(redis, jobs, job, f"worker {job.get('worker')} stopped heartbeating while the job ran; "
         "the run's outcome is unknown")


def fail(redis, jobs: JobStore, job: dict, reason: str) -> None:
    """Mark a job failed with its reason, count it, and end its event stream (so followers stop)."""
    now = time.time()
    pipe = redis.pipeline()
    jobs.update(job["id"], pipe=pipe, status=JobStatus.FAILED, finished_at=now, reason=reason)
    metrics.record_outcome(pipe, job["tenant"], job["playbook"], str(JobStatus.FAILED),
                           now - (job.get("started_at") or now))
    EventLog(redis, job["id"]).publish({"event": END, "status": str(JobStatus.FAILED), "reason": reason,
                                       "created": now, "correlation_id": job.get("correlation_id")}, pipe=pipe)
    pipe.execute()
    log.warning("job %s failed: %s", job["id"], reason)
