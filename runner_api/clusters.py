"""Clusters: quota check, placement and reservation, then a chain of stage jobs; DELETE wipes and releases.

A cluster is a Redis record (what was asked, which nodes, each stage's job and status) beside its
NetBox twin (a virtualization cluster of type slurm/k8s whose devices are the nodes). Each stage is
an ordinary runner job (queued, admitted, streamed, journaled); when one ends, the worker that ran
it starts the next (`advance`). Reading a cluster advances it too, so a worker that died between a
stage's end and the next stage's start only delays the chain. Every change to a cluster's stages
happens under that cluster's lock, re-reading it first, so a stage is recorded and followed once.
"""

import json
import logging
import time
from enum import StrEnum

from runner_api import costs, reservations, stages, store, submission
from runner_api.jobs import JobStatus, new_id
from runner_api.placement import Level, Request
from runner_api.principal import Principal, Role

log = logging.getLogger(__name__)
JSON_FIELDS = ("request", "nodes", "node_ids", "stages", "estimate", "placement", "created_by", "networks")
FLOAT_FIELDS = ("created_at", "ready_at", "deleted_at", "hourly_cost")
PUBLIC = ("id", "name", "tenant", "project", "kind", "status", "reason", "request", "placement", "nodes", "site",
          "gpus", "hourly_cost", "estimate", "stages", "netbox_cluster_id", "created_at", "created_by", "ready_at",
          "deleted_at")


class ClusterStatus(StrEnum):
    PROVISIONING = "provisioning"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESSFUL = "successful"
    SKIPPED = "skipped"
    FAILED = "failed"


class NameTaken(Exception):
    pass


def _encode(fields: dict) -> dict:
    return {k: json.dumps(v) if k in JSON_FIELDS else ("" if v is None else v) for k, v in fields.items()}


def _decode(raw: dict) -> dict:
    out = {}
    for key, value in raw.items():
        if key in JSON_FIELDS:
            out[key] = json.loads(value) if value else None
        elif key in FLOAT_FIELDS:
            out[key] = float(value) if value else None
        elif key in ("gpus", "netbox_cluster_id"):
            out[key] = int(value) if value else None
        else:
            out[key] = value or None
    return out


def public(cluster: dict, cost_enabled: bool = True) -> dict:
    view = {k: cluster.get(k) for k in PUBLIC}
    if not cost_enabled:
        view.pop("hourly_cost")
        view.pop("estimate")
    return view


class ClusterStore:
    def __init__(self, redis):
        self.redis = redis

    def claim_name(self, tenant: str, name: str, cluster_id: str) -> None:
        if not self.redis.hsetnx(store.cluster_names(tenant), name, cluster_id):
            raise NameTaken(f"tenant {tenant} already has a cluster named {name}")

    def free_name(self, tenant: str, name: str) -> None:
        self.redis.hdel(store.cluster_names(tenant), name)

    def save(self, cluster: dict) -> None:
        pipe = self.redis.pipeline()
        pipe.hset(store.cluster_key(cluster["id"]), mapping=_encode(cluster))
        pipe.zadd(store.tenant_clusters(cluster["tenant"]), {cluster["id"]: cluster["created_at"]})
        pipe.execute()

    def update(self, cluster_id: str, **fields) -> None:
        self.redis.hset(store.cluster_key(cluster_id), mapping=_encode(fields))

    def get(self, cluster_id: str) -> dict | None:
        raw = self.redis.hgetall(store.cluster_key(cluster_id))
        return _decode(raw) if raw else None

    def of_tenant(self, tenant: str) -> list[dict]:
        ids = self.redis.zrevrange(store.tenant_clusters(tenant), 0, -1)
        pipe = self.redis.pipeline()
        for cluster_id in ids:
            pipe.hgetall(store.cluster_key(cluster_id))
        return [_decode(raw) for raw in pipe.execute() if raw]

    def locked(self, cluster_id: str) -> reservations.RedisLock:
        """Every change to a cluster's stages happens under this, re-reading the cluster first."""
        return reservations.RedisLock(self.redis, f"{store.cluster_key(cluster_id)}:lock", f"cluster {cluster_id}",
                                      lease_ms=120000)


def request_of(body: dict) -> Request:
    return Request(gpus=body.get("gpus"), nodes=body.get("nodes"), vendor=body.get("vendor"),
                   model=body.get("model"), min_gpu_memory_gb=body.get("min_gpu_memory_gb", 0),
                   interconnect=Level(body.get("interconnect", "any")), ib=bool(body.get("ib", False)))


def placement_view(decision) -> dict:
    p = decision.placement
    return {"model": p.model, "level": str(p.level), "domain": p.domain, "gpus": p.gpus,
            "nodes": [{"name": n.name, "nvlink_domain": n.nvlink_domain, "leaf": n.leaf, "pod": n.pod,
                       "hourly_cost": n.hourly_cost} for n in p.nodes]}


def create(rt, principal: Principal, tenant: str, body: dict, correlation_id: str) -> dict:
    """Reserve and start provisioning; QuotaExceeded / Unplaceable / NameTaken come back to the caller."""
    cluster_id = new_id()
    plan = rt.stage_plans[body["kind"]]
    rt.clusters.claim_name(tenant, body["name"], cluster_id)
    try:
        decision, netbox_id = reservations.reserve(rt.fleet, rt.store.redis, tenant, body.get("project"),
                                                   request_of(body), body["kind"], f"{tenant}-{body['name']}")
    except Exception:
        rt.clusters.free_name(tenant, body["name"])
        raise
    nodes = decision.placement.nodes
    cluster = {
        "id": cluster_id, "name": body["name"], "tenant": tenant, "project": body.get("project"),
        "kind": body["kind"], "status": ClusterStatus.PROVISIONING, "reason": None, "request": body,
        "placement": placement_view(decision), "nodes": [n.name for n in nodes],
        "node_ids": {n.name: n.id for n in nodes}, "site": nodes[0].site, "gpus": decision.placement.gpus,
        "hourly_cost": sum(n.hourly_cost for n in nodes),
        "estimate": costs.estimate(nodes, rt.settings.currency),
        "stages": [{"stage": s.name, "playbook": s.playbook, "status": StageStatus.PENDING, "job": None}
                   for s in plan],
        "netbox_cluster_id": netbox_id, "created_at": time.time(), "created_by": principal.as_dict(),
        "correlation_id": correlation_id, "networks": stages.onboarded_networks(rt.store.redis, tenant),
    }
    rt.clusters.save(cluster)
    after_change(rt, tenant)
    _next_stage(rt, cluster, plan)
    return rt.clusters.get(cluster_id)


def after_change(rt, tenant: str) -> list[dict]:
    """Usage changed: alerts for thresholds crossed, metrics refreshed."""
    try:
        report = reservations.quota_report(rt.fleet, tenant)
        return reservations.raise_alerts(rt.store.redis, rt.settings, tenant, report)
    except Exception:  # the reservation stands; a missed alert is logged, not a failed request
        log.exception("quota alerts for %s not evaluated", tenant)
        return []


def _system(cluster: dict) -> Principal:
    return Principal(subject=f"cluster:{cluster['id']}", role=Role.TENANT_OPERATOR, tenant=cluster["tenant"],
                     via="pipeline")


def _next_stage(rt, cluster: dict, plan: list) -> None:
    """Start the first stage not yet done (skipping those the cluster does not want), or finish the chain."""
    index = sum(s["status"] in (StageStatus.SUCCESSFUL, StageStatus.SKIPPED) for s in cluster["stages"])
    while index < len(plan) and not plan[index].wanted(cluster):
        cluster["stages"][index] |= {"status": StageStatus.SKIPPED, "reason": f"no {plan[index].only_if} asked for"}
        index += 1
    if index == len(plan):
        rt.clusters.update(cluster["id"], stages=cluster["stages"])
        return _finish_chain(rt, cluster)
    stage = plan[index]
    try:
        job = stages.job_for(cluster, stage, rt.catalogue[stage.playbook], cluster.get("correlation_id") or "")
    except (stages.StageConfigError, KeyError) as exc:
        cluster["stages"][index] |= {"status": StageStatus.FAILED, "reason": str(exc)}
        return _fail(rt, cluster, f"stage {stage.name} could not start: {exc}")
    submission.enqueue(rt, job, _system(cluster))
    cluster["stages"][index] |= {"status": StageStatus.RUNNING, "job": job["id"]}
    rt.clusters.update(cluster["id"], stages=cluster["stages"])


def _finish_chain(rt, cluster: dict) -> None:
    if cluster["status"] == ClusterStatus.DELETING:
        reservations.release(rt.fleet, cluster["tenant"], list(cluster["node_ids"].values()),
                             cluster.get("netbox_cluster_id"), rt.store.redis)
        rt.clusters.update(cluster["id"], status=ClusterStatus.DELETED, deleted_at=time.time())
        rt.clusters.free_name(cluster["tenant"], cluster["name"])
        after_change(rt, cluster["tenant"])
        return
    reservations.activate(rt.fleet.client(), list(cluster["node_ids"].values()), cluster.get("netbox_cluster_id"))
    rt.clusters.update(cluster["id"], status=ClusterStatus.READY, ready_at=time.time())


def _fail(rt, cluster: dict, reason: str) -> None:
    rt.clusters.update(cluster["id"], status=ClusterStatus.FAILED, reason=reason, stages=cluster["stages"])


def _plan(rt, cluster: dict) -> list:
    return rt.stage_plans["delete" if cluster["status"] == ClusterStatus.DELETING else cluster["kind"]]


def _record(rt, cluster: dict, job: dict) -> None:
    """A running stage's job ended: its outcome goes on the stage (and fails the cluster if it failed)."""
    index = next((i for i, s in enumerate(cluster["stages"])
                  if s.get("job") == job["id"] and s["status"] == StageStatus.RUNNING), None)
    if index is None:  # recorded already, or a provisioning stage that ended after a DELETE replaced the chain
        return
    ok = job["status"] == JobStatus.SUCCESSFUL
    cluster["stages"][index] |= {"status": StageStatus.SUCCESSFUL if ok else StageStatus.FAILED,
                                 "reason": job.get("reason")}
    rt.clusters.update(cluster["id"], stages=cluster["stages"])
    if not ok:
        what = "delete" if cluster["status"] == ClusterStatus.DELETING else "provisioning"
        _fail(rt, cluster, f"{what} stage {cluster['stages'][index]['stage']} {job['status']}: "
                           f"{job.get('reason') or 'see its job'}")
        cluster["status"] = ClusterStatus.FAILED


def _drive(rt, cluster: dict) -> None:
    """Start the next stage when none runs and none failed; finish the chain after the last."""
    if cluster["status"] not in (ClusterStatus.PROVISIONING, ClusterStatus.DELETING):
        return
    if any(s["status"] in (StageStatus.RUNNING, StageStatus.FAILED) for s in cluster["stages"]):
        return
    _next_stage(rt, cluster, _plan(rt, cluster))


def advance(rt, job: dict) -> None:
    """A stage job ended: record it and move the chain on. Under the cluster's lock, so a worker and a
    reader (refresh) or a DELETE never both act on one stage."""
    if not job.get("cluster"):
        return
    with rt.clusters.locked(job["cluster"]):
        cluster = rt.clusters.get(job["cluster"])
        if cluster is not None:
            _record(rt, cluster, job)
            _drive(rt, cluster)


def refresh(rt, cluster: dict) -> dict:
    """Catch up on a chain nobody moved on: a stage whose job ended without its worker advancing it (the
    worker died), or a next step that failed half-way (NetBox down while releasing)."""
    if cluster["status"] not in (ClusterStatus.PROVISIONING, ClusterStatus.DELETING):
        return cluster
    with rt.clusters.locked(cluster["id"]):
        cluster = rt.clusters.get(cluster["id"])
        for stage in cluster.get("stages") or []:
            job = rt.jobs.get(stage["job"]) if stage["status"] == StageStatus.RUNNING and stage.get("job") else None
            if job and JobStatus(job["status"]).finished:
                _record(rt, cluster, job)
        _drive(rt, cluster)
        return rt.clusters.get(cluster["id"])


def delete(rt, principal: Principal, cluster: dict) -> dict:
    """Stop provisioning, then wipe the nodes; they are released when the wipe succeeded."""
    with rt.clusters.locked(cluster["id"]):
        cluster = rt.clusters.get(cluster["id"])
        if cluster["status"] in (ClusterStatus.DELETING, ClusterStatus.DELETED):
            return cluster
        for stage in cluster["stages"]:
            job = rt.jobs.get(stage["job"]) if stage.get("job") else None
            if job and not JobStatus(job["status"]).finished:
                submission.cancel(rt, principal, job, cluster.get("correlation_id") or "")
        _start_deleting(rt, cluster, f"deleted by {principal.subject}")
        return rt.clusters.get(cluster["id"])


def _start_deleting(rt, cluster: dict, reason: str) -> None:
    plan = rt.stage_plans["delete"]
    cluster |= {"status": ClusterStatus.DELETING, "reason": reason,
                "stages": [{"stage": s.name, "playbook": s.playbook, "status": StageStatus.PENDING, "job": None}
                           for s in plan]}
    rt.clusters.update(cluster["id"], status=cluster["status"], reason=reason, stages=cluster["stages"])
    _next_stage(rt, cluster, plan)


def release_all(rt, tenant: str) -> int:
    """Offboarding: delete every live cluster of the tenant, and wipe and free the nodes it holds outside
    them (assigned by hand, or booked by a reservation that never got its record). Returns how many are
    still on their way out; 0 means the tenant holds nothing any more."""
    pending, live = 0, set()
    for cluster in rt.clusters.of_tenant(tenant):
        cluster = refresh(rt, cluster)
        if cluster["status"] == ClusterStatus.DELETED:
            continue
        if cluster["status"] != ClusterStatus.DELETING:
            cluster = delete(rt, Principal(f"offboarding:{tenant}", Role.PLATFORM_ADMIN, None), cluster)
        live |= set((cluster.get("node_ids") or {}).values())
        pending += cluster["status"] != ClusterStatus.DELETED
    loose = [h for h in rt.fleet.held_by(tenant) if h.node.id not in live]
    if loose:
        pending += _adopt(rt, tenant, loose)["status"] != ClusterStatus.DELETED
    return pending


def _adopt(rt, tenant: str, held: list) -> dict:
    """A record for nodes held outside any cluster, so they take the same way out: wipe, then release."""
    nodes = [h.node for h in held]
    cluster = {
        "id": new_id(), "name": f"held-by-{tenant}", "tenant": tenant, "project": None, "kind": "adopted",
        "status": ClusterStatus.DELETING, "reason": None, "request": {}, "nodes": [n.name for n in nodes],
        "placement": {"model": ",".join(sorted({n.model for n in nodes})), "level": "any", "domain": "-",
                      "gpus": sum(n.gpus for n in nodes), "nodes": []},
        "node_ids": {n.name: n.id for n in nodes}, "site": nodes[0].site, "gpus": sum(n.gpus for n in nodes),
        "hourly_cost": 0.0, "estimate": None, "stages": [], "netbox_cluster_id": None, "created_at": time.time(),
        "created_by": {"subject": f"offboarding:{tenant}"}, "correlation_id": "",
    }
    rt.clusters.save(cluster)
    with rt.clusters.locked(cluster["id"]):
        _start_deleting(rt, cluster, "offboarding: nodes held outside clusters")
    return rt.clusters.get(cluster["id"])


def forget_tenant(rt, tenant: str) -> None:
    """Offboarded: its cluster records, alerts and quota state go too, so a new tenant reusing the slug
    inherits none of them."""
    redis = rt.store.redis
    ids = redis.zrange(store.tenant_clusters(tenant), 0, -1)
    pipe = redis.pipeline()
    for cluster_id in ids:
        pipe.delete(store.cluster_key(cluster_id))
    pipe.delete(store.tenant_clusters(tenant), store.cluster_names(tenant), store.tenant_alerts(tenant),
                store.quota_state(tenant))
    stale = [k for k in redis.hkeys(store.METRIC_QUOTA) if k.startswith(f"{tenant}|")]
    if stale:
        pipe.hdel(store.METRIC_QUOTA, *stale)
    pipe.execute()
