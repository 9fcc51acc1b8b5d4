"""Redis connections and the key names every runner process agrees on."""

from functools import cached_property

import redis as redis_py

PREFIX = "gpucloud"
TENANTS = f"{PREFIX}:tenants"
FAIR_ORDER = f"{PREFIX}:fair-order"  # zset: tenant -> serve counter; lowest is served next
FAIR_COUNTER = f"{PREFIX}:fair-counter"
WAKEUP = f"{PREFIX}:wakeup"
AUDIT = f"{PREFIX}:audit"
ALL_JOBS = f"{PREFIX}:jobs"
TOKENS = f"{PREFIX}:tokens"
OIDC_ISSUERS = f"{PREFIX}:oidc-issuers"
METRIC_OUTCOMES = f"{PREFIX}:metrics:outcomes"
METRIC_DURATION = f"{PREFIX}:metrics:duration"
METRIC_ALERTS = f"{PREFIX}:metrics:alerts"
METRIC_QUOTA = f"{PREFIX}:metrics:quota"  # "tenant|scope|resource" -> "used|limit", refreshed on every change
PLACEMENT_LOCK = f"{PREFIX}:lock:placement"
QUEUE_PREFIX = "tenant."  # RQ queue name prefix; RQ stores it under rq:queue:tenant.<slug>


def tenant_key(slug: str) -> str:
    return f"{PREFIX}:tenant:{slug}"


def tenant_jobs(slug: str) -> str:
    return f"{PREFIX}:jobs:{slug}"


def running(slug: str) -> str:
    return f"{PREFIX}:running:{slug}"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def job_events(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:events"


def job_alive(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:alive"


def node_lock(host: str) -> str:
    return f"{PREFIX}:lock:node:{host}"


def quota_state(tenant: str) -> str:
    return f"{PREFIX}:quota-state:{tenant}"


def tenant_alerts(tenant: str) -> str:
    return f"{PREFIX}:alerts:{tenant}"


def cluster_key(cluster_id: str) -> str:
    return f"{PREFIX}:cluster:{cluster_id}"


def cluster_names(tenant: str) -> str:
    return f"{PREFIX}:cluster-names:{tenant}"


def tenant_clusters(tenant: str) -> str:
    return f"{PREFIX}:clusters:{tenant}"


def token_key(digest: str) -> str:
    return f"{PREFIX}:token:{digest}"


def onboarding_key(slug: str) -> str:
    return f"{PREFIX}:onboarding:{slug}"


def users_key(slug: str) -> str:
    """Hash: email -> the tenant user's record."""
    return f"{PREFIX}:users:{slug}"


def invitation_key(digest: str) -> str:
    return f"{PREFIX}:invitation:{digest}"


def tenant_lock(slug: str, what: str) -> str:
    return f"{PREFIX}:lock:{what}:{slug}"


def queue_name(tenant: str) -> str:
    return f"{QUEUE_PREFIX}{tenant}"


class Store:
    """Two clients on one Redis: text for our records, bytes for RQ (which needs raw replies)."""

    def __init__(self, url: str):
        self.url = url

    @cached_property
    def redis(self) -> redis_py.Redis:
        # Blocking reads (SSE's XREAD, the workers' BLPOP) wait up to 15 s; the socket must outlast them.
        return redis_py.Redis.from_url(self.url, decode_responses=True, health_check_interval=30,
                                       socket_timeout=60, socket_connect_timeout=5)

    @cached_property
    def rq(self) -> redis_py.Redis:
        return redis_py.Redis.from_url(self.url, health_check_interval=30, socket_timeout=60,
                                       socket_connect_timeout=5)

    def wake_workers(self, pipe=None) -> None:
        """Nudge idle workers; they re-check queues anyway after a second."""
        target = pipe if pipe is not None else self.redis.pipeline()
        target.rpush(WAKEUP, 1)
        target.ltrim(WAKEUP, -64, -1)
        if pipe is None:
            target.execute()
