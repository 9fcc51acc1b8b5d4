"""Prometheus metrics kept in Redis, so every API replica reports what every worker recorded."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from runner_api import store

BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))


def record_outcome(pipe, tenant: str, playbook: str, status: str, duration: float | None) -> None:
    pipe.hincrby(store.METRIC_OUTCOMES, f"{tenant}|{playbook}|{status}", 1)
    if duration is None:
        return
    for bound in BUCKETS:
        if duration <= bound:
            pipe.hincrby(store.METRIC_DURATION, f"{playbook}|{bound}", 1)
    pipe.hincrbyfloat(store.METRIC_DURATION, f"{playbook}|sum", duration)


class RunnerCollector:
    def __init__(self, redis):
        self.redis = redis

    def collect(self):
        tenants = sorted(self.redis.smembers(store.TENANTS))
        pipe = self.redis.pipeline()
        for tenant in tenants:
            pipe.llen(f"rq:queue:{store.queue_name(tenant)}")
            pipe.scard(store.running(tenant))
        counts = pipe.execute()
        queued = GaugeMetricFamily("gpucloud_queue_depth", "Jobs waiting in the tenant's queue", labels=["tenant"])
        running = GaugeMetricFamily("gpucloud_jobs_running", "Jobs running for the tenant", labels=["tenant"])
        for index, tenant in enumerate(tenants):
            queued.add_metric([tenant], counts[2 * index])
            running.add_metric([tenant], counts[2 * index + 1])
        yield queued
        yield running
        outcomes = CounterMetricFamily("gpucloud_jobs", "Finished jobs by outcome",
                                       labels=["tenant", "playbook", "status"])
        for key, value in self.redis.hgetall(store.METRIC_OUTCOMES).items():
            outcomes.add_metric(key.split("|"), float(value))
        yield outcomes
        yield self._durations()
        yield from self._quotas()

    def _quotas(self):
        used = GaugeMetricFamily("gpucloud_quota_used", "Quota in use, from NetBox allocations",
                                 labels=["tenant", "project", "resource"])
        limit = GaugeMetricFamily("gpucloud_quota_limit", "Quota limit", labels=["tenant", "project", "resource"])
        ratio = GaugeMetricFamily("gpucloud_quota_usage_ratio", "Quota used over limit",
                                  labels=["tenant", "project", "resource"])
        for key, value in sorted(self.redis.hgetall(store.METRIC_QUOTA).items()):
            labels = key.split("|")
            in_use, cap = (float(v) for v in value.split("|"))
            used.add_metric(labels, in_use)
            limit.add_metric(labels, cap)
            ratio.add_metric(labels, in_use / cap if cap else 0.0)
        alerts = CounterMetricFamily("gpucloud_quota_alerts", "Quota alerts raised",
                                     labels=["tenant", "kind", "level"])
        for key, value in self.redis.hgetall(store.METRIC_ALERTS).items():
            alerts.add_metric(key.split("|"), float(value))
        yield from (used, limit, ratio, alerts)

    def _durations(self):
        family = HistogramMetricFamily("gpucloud_job_duration_seconds", "Job run time", labels=["playbook"])
        per_playbook: dict[str, dict] = {}
        for key, value in self.redis.hgetall(store.METRIC_DURATION).items():
            playbook, bound = key.rsplit("|", 1)
            per_playbook.setdefault(playbook, {})[bound] = float(value)
        for playbook, values in sorted(per_playbook.items()):
            buckets = [("+Inf" if b == float("inf") else str(b), values.get(str(b), 0.0)) for b in BUCKETS]
            family.add_metric([playbook], buckets, values.get("sum", 0.0))
        return family


def exposition(redis) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunnerCollector(redis))
    return generate_latest(registry)
