"""The RQ worker: serves every tenant queue fairly, one admitted job at a time.

RQ's stock dequeue pops the first non-empty queue; ours asks Redis (admission.DEQUEUE) for the
next admissible job across all tenants, least-recently-served tenant first, locks included.
The rest is RQ: a forked work horse per job, heartbeats, registries, JSON serialisation.
"""

import argparse
import logging
import socket
import time

from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

import runner_api  # noqa: F401  (collection on sys.path)
from runner_api import execution, reaper, retention, store  # noqa: F401  (execution: see below)
from runner_api.admission import Admission
from runner_api.jobs import JobStore
from runner_api.settings import Settings

log = logging.getLogger("runner_api.worker")
# `execution` (ansible-runner, the NetBox client, requests) is imported here, in the parent, so each
# forked work horse starts with it loaded instead of spending ~0.3 s importing it per job.
REAP_EVERY = 3.0
PRUNE_EVERY = 3600


class TenantWorker(Worker):
    def __init__(self, *args, settings: Settings, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.store = store.Store(settings.redis_url)
        self.admission = Admission(self.store.redis, settings.default_concurrency)
        self._last_reap = 0.0

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        self.set_state(WorkerStatus.IDLE)
        self.procline("waiting for tenant jobs")
        idle_since = time.monotonic()
        while True:
            self.heartbeat()
            if self.should_run_maintenance_tasks:
                self._refresh_queues()
                self.run_maintenance_tasks()
            self._housekeeping()
            picked = self.admission.next_job(self.name)
            if picked:
                found = self._fetch(*picked)
                if found:
                    return found
                continue
            if timeout is None:  # burst mode: nothing admissible now
                return None
            if max_idle_time is not None and time.monotonic() - idle_since > max_idle_time:
                return None
            self.store.redis.blpop([store.WAKEUP], timeout=1)

    def _fetch(self, tenant: str, job_id: str):
        queue = Queue(store.queue_name(tenant), connection=self.connection, serializer=self.serializer)
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            jobs = JobStore(self.store.redis)
            record = jobs.get(job_id)
            self.admission.release(tenant, job_id)
            if record:
                reaper.fail(self.store.redis, jobs, record, "its RQ job vanished from Redis before it started")
            return None
        log.info("worker %s: tenant %s job %s", self.name, tenant, job_id)
        return job, queue

    def _refresh_queues(self) -> None:
        tenants = sorted(self.store.redis.smembers(store.TENANTS)) or ["_none"]
        self.queues = [Queue(store.queue_name(t), connection=self.connection, serializer=self.serializer)
                       for t in tenants]

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_reap < REAP_EVERY:
            return
        self._last_reap = now
        reaper.reap(self.store.redis, self.settings.default_concurrency)
        if self.store.redis.set(f"{store.PREFIX}:prune-lock", self.name, nx=True, ex=PRUNE_EVERY):
            pruned = retention.prune(self.settings, self.store.redis)
            if pruned:
                log.info("pruned %d jobs past retention", len(pruned))


def build(settings: Settings, name: str | None = None) -> TenantWorker:
    rq_redis = store.Store(settings.redis_url).rq
    worker = TenantWorker([Queue(store.queue_name("_none"), connection=rq_redis, serializer=JSONSerializer)],
                          connection=rq_redis, serializer=JSONSerializer, settings=settings,
                          name=name or f"{socket.gethostname()}.{int(time.time() * 1000) % 10**8}")
    worker._refresh_queues()
    return worker


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gpucloud-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--name", help="worker name (default: host name + a suffix)")
    parser.add_argument("--burst", action="store_true", help="quit when nothing is admissible")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = build(Settings.from_env(), args.name)
    worker.work(burst=args.burst, logging_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
