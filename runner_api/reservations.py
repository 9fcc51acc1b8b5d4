"""Reserving nodes for a tenant in NetBox, and giving them back, without ever double-booking.

Every reservation and release runs under one Redis lock shared by all API processes and workers:
inside it the fleet is read fresh from NetBox, the quota checked against that view, nodes chosen,
and all of them written in one bulk PATCH (NetBox applies a bulk update in one transaction, so a
reservation lands whole or not at all). The lock's lease is renewed right before the write, so a
holder that stalled past its lease writes nothing. One lock serialises placements fleet-wide;
a decision plus its write takes a few hundred milliseconds, which is fine for cluster-sized requests.
"""

import logging
import secrets
import time
from dataclasses import dataclass, field

from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_journal
from runner_api import alerts, store
from runner_api.fleet import FREE_STATUS, RESERVED_STATUS, Fleet, Held
from runner_api.placement import FreePool, Placement, Request
from runner_api.quotas import Quota, QuotaExceeded, Usage

LEASE_MS = 30000
WAIT_SECONDS = 60.0
RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
log = logging.getLogger(__name__)
CLUSTER_TYPES = {"slurm": "slurm", "k8s": "k8s"}  # gpucloud kind -> NetBox cluster type slug


class LockTimeout(Exception):
    pass


class LockLost(Exception):
    pass


class UnknownProject(Exception):
    pass


class RedisLock:
    """A lease in Redis: SET NX with a random token, renewed and released only by its holder."""

    def __init__(self, redis, key: str, what: str, lease_ms: int = LEASE_MS, wait: float = WAIT_SECONDS):
        self.redis, self.key, self.what, self.lease_ms, self.wait = redis, key, what, lease_ms, wait
        self.token = secrets.token_hex(8)

    def __enter__(self):
        deadline = time.monotonic() + self.wait
        while not self.redis.set(self.key, self.token, nx=True, px=self.lease_ms):
            if time.monotonic() > deadline:
                raise LockTimeout(f"{self.what} is busy: no turn within {self.wait:.0f} s")
            time.sleep(0.02)
        return self

    def renew(self) -> None:
        if not self.redis.eval(RENEW, 1, self.key, self.token, self.lease_ms):
            raise LockLost(f"the {self.what} lock's lease ran out before the write; nothing was written")

    def __exit__(self, *exc):
        self.redis.eval(UNLOCK, 1, self.key, self.token)


def placement_lock(redis) -> RedisLock:
    return RedisLock(redis, store.PLACEMENT_LOCK, "placement")


@dataclass
class Decision:
    """A placement and what it would cost the tenant's quotas."""

    placement: Placement
    asked: Usage
    tenant_usage: Usage
    quotas: list[Quota]
    tenant_cf: dict
    tenant_id: int
    alerts: list[dict] = field(default_factory=list)


def tenant_record(client, slug: str) -> dict:
    found = client.list("tenancy/tenants", slug=slug, fields="id,slug,custom_fields")
    if not found:
        raise LookupError(f"no NetBox tenant {slug}")
    return found[0]


def scope_quotas(slug: str, project: str | None, custom_fields: dict) -> list[Quota]:
    quotas = [Quota.of_tenant(slug, custom_fields)]
    project_quota = Quota.of_project(slug, project, custom_fields) if project else None
    return quotas + ([project_quota] if project_quota else [])


def _usage_in(quota: Quota, held: list[Held], project: str | None) -> Usage:
    mine = [h.node for h in held if quota.scope.startswith("tenant") or h.project == project]
    return Usage.of(mine)


def precheck(quotas: list[Quota], held: list[Held], project: str | None, request: Request) -> list[str]:
    """Before placement: the GPUs the request names (the model's whole nodes are checked after)."""
    if not request.gpus:
        return []
    asked = Usage(gpus=request.gpus, gpus_by_model={request.model: request.gpus} if request.model else {})
    return [v for q in quotas for v in q.violations(_usage_in(q, held, project), asked)]


def decide(fleet: Fleet, slug: str, project: str | None, request: Request) -> Decision:
    """Quota check, then placement, then the quota again on the whole nodes chosen. Raises QuotaExceeded
    or placement.Unplaceable; writes nothing."""
    tenant = tenant_record(fleet.client(), slug)
    if project and project not in ((tenant.get("custom_fields") or {}).get("projects") or {}):
        raise UnknownProject(f"tenant {slug} has no project {project}")
    servers = fleet.servers()
    held = [h for h in servers if h.tenant == slug]
    quotas = scope_quotas(slug, project, tenant.get("custom_fields"))
    early = precheck(quotas, held, project, request)
    if early:
        raise QuotaExceeded(early)
    placement = FreePool([h.node for h in servers if h.free]).place(request)
    asked = Usage.of(placement.nodes)
    late = [v for q in quotas for v in q.violations(_usage_in(q, held, project), asked)]
    if late:
        raise QuotaExceeded(late)
    usage = Usage.of([h.node for h in held] + list(placement.nodes))
    return Decision(placement, asked, usage, quotas, tenant.get("custom_fields") or {}, tenant["id"])


def reserve(fleet: Fleet, redis, slug: str, project: str | None, request: Request, kind: str,
            cluster_name: str) -> tuple[Decision, int]:
    """Place and reserve under the lock; returns the decision and the NetBox cluster id."""
    with placement_lock(redis) as lock:
        decision = decide(fleet, slug, project, request)
        client = fleet.client()
        cluster = client.create("virtualization/clusters", [{
            "name": cluster_name, "type": {"slug": CLUSTER_TYPES[kind]}, "tenant": decision.tenant_id,
            "status": "planned", "description": f"gpucloud {kind} cluster of {slug}"}])[0]
        try:
            lock.renew()
            client.update("dcim/devices", [
                {"id": n.id, "tenant": decision.tenant_id, "status": RESERVED_STATUS, "cluster": cluster["id"],
                 "custom_fields": {"project": project}} for n in decision.placement.nodes])
        except Exception:
            _delete_cluster(client, cluster["id"])
            raise
        write_usage(client, decision.tenant_id, decision.tenant_usage)
    names = ", ".join(n.name for n in decision.placement.nodes)
    journal(client, decision.tenant_id, f"gpucloud reserved {len(decision.placement.nodes)} nodes ({names}) for "
                                        f"{kind} cluster **{cluster_name}**"
                                        + (f", project {project}" if project else "")
                                        + f"; placed in {decision.placement.level} domain {decision.placement.domain}.")
    return decision, cluster["id"]


def release(fleet: Fleet, slug: str, device_ids: list[int], cluster_id: int | None, redis) -> Usage:
    """Nodes back to the free pool and the NetBox cluster gone; idempotent."""
    client = fleet.client()
    with placement_lock(redis):
        if device_ids:
            client.update("dcim/devices", [{"id": i, "tenant": None, "status": FREE_STATUS, "cluster": None,
                                            "custom_fields": {"project": None}} for i in device_ids])
        if cluster_id and client.list("virtualization/clusters", id=cluster_id, fields="id"):
            client.request("DELETE", f"virtualization/clusters/{cluster_id}/")
        tenant = tenant_record(client, slug)
        usage = Usage.of([h.node for h in fleet.held_by(slug)])
        write_usage(client, tenant["id"], usage)
    journal(client, tenant["id"], f"gpucloud released {len(device_ids)} nodes to the free pool; the tenant now "
                                  f"holds {usage.gpus} GPUs.")
    return usage


def journal(client, tenant_id: int, text: str, kind: str = "info") -> None:
    """A trace on the tenant's NetBox page; NetBox trouble here never undoes a reservation."""
    try:
        netbox_journal.write(client, [{"assigned_object_type": "tenancy.tenant", "assigned_object_id": tenant_id,
                                       "kind": kind, "comments": text}])
    except Exception as exc:
        log.warning("tenant %s: journal entry not written: %s", tenant_id, exc)


def _delete_cluster(client, cluster_id: int) -> None:
    """Undo the NetBox cluster of a reservation whose write failed; the write's error is what the caller sees."""
    try:
        client.request("DELETE", f"virtualization/clusters/{cluster_id}/")
    except Exception as exc:
        log.warning("NetBox cluster %s of a failed reservation not removed: %s", cluster_id, exc)


def activate(client, device_ids: list[int], cluster_id: int | None) -> None:
    """Provisioned: the nodes and their NetBox cluster go active."""
    client.update("dcim/devices", [{"id": i, "status": "active"} for i in device_ids])
    if cluster_id:
        client.update("virtualization/clusters", [{"id": cluster_id, "status": "active"}])


def write_usage(client, tenant_id: int, usage: Usage) -> None:
    """Quota and usage side by side on the tenant's NetBox page. Derived data: a failed write is logged and
    the next reservation or release writes it again; it never undoes the change it describes."""
    try:
        _write_usage(client, tenant_id, usage)
    except Exception as exc:
        log.warning("tenant %s: usage not written to NetBox: %s", tenant_id, exc)


def _write_usage(client, tenant_id: int, usage: Usage) -> None:
    client.update("tenancy/tenants", [{"id": tenant_id, "custom_fields": {
        "usage_gpus": usage.gpus, "usage_cpus": usage.cpus, "usage_memory_gb": usage.memory_gb,
        "usage_storage_tb": usage.storage_tb, "usage_gpus_by_model": usage.gpus_by_model}}])


def quota_report(fleet: Fleet, slug: str) -> dict:
    """Quota, usage and percentages of the tenant and each of its projects."""
    tenant = tenant_record(fleet.client(), slug)
    cf = tenant.get("custom_fields") or {}
    held = fleet.held_by(slug)
    usage = Usage.of([h.node for h in held])
    out = {"tenant": slug, "thresholds": alerts.thresholds(cf), "usage": usage.as_dict(),
           "quota": Quota.of_tenant(slug, cf).report(usage), "projects": {}}
    for project in sorted(cf.get("projects") or {}):
        quota = Quota.of_project(slug, project, cf)
        usage = Usage.of([h.node for h in held if h.project == project])
        out["projects"][project] = {"usage": usage.as_dict(), "quota": quota.report(usage)}
    return out


def raise_alerts(redis, settings, slug: str, report: dict) -> list[dict]:
    """Threshold crossings for the tenant and its projects, published."""
    fired = alerts.crossings(redis, slug, f"tenant {slug}", report["quota"], report["thresholds"])
    for project, entry in report["projects"].items():
        fired += alerts.crossings(redis, slug, f"project {slug}/{project}", entry["quota"], report["thresholds"])
    alerts.publish(redis, fired, settings.alert_webhook_url, settings.alert_webhook_secret)
    record_metrics(redis, slug, report)
    return fired


def record_metrics(redis, slug: str, report: dict) -> None:
    values = {f"{slug}|tenant|{q['resource']}": f"{q['used']}|{q['limit']}" for q in report["quota"]}
    for project, entry in report["projects"].items():
        values |= {f"{slug}|{project}|{q['resource']}": f"{q['used']}|{q['limit']}" for q in entry["quota"]}
    pipe = redis.pipeline()
    for key in redis.hkeys(store.METRIC_QUOTA):
        if key.startswith(f"{slug}|") and key not in values:
            pipe.hdel(store.METRIC_QUOTA, key)
    if values:
        pipe.hset(store.METRIC_QUOTA, mapping=values)
    pipe.execute()
