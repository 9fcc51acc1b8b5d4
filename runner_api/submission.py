"""Turning a checked launch into a queued job, and canceling one: all-or-nothing Redis writes."""

import time

from runner_api import audit, launch, metrics, store
from runner_api.errors import Conflict, Forbidden, ValidationFailed
from runner_api.events import END, EventLog
from runner_api.jobs import JobStatus, new_id
from runner_api.principal import Role

RQ_GRACE = 120  # RQ kills the horse only if ansible-runner's own timeout failed to stop the run
CANCEL_QUEUED = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' or redis.call('HGET', KEYS[1], 'worker') then return 0 end
redis.call('HSET', KEYS[1], 'status', 'canceled', 'finished_at', ARGV[2], 'reason', ARGV[3], 'waiting', '')
redis.call('LREM', KEYS[2], 0, ARGV[1])
return 1
"""


def tenant_errors(rt, principal, requested: str | None) -> tuple[str | None, list[dict]]:
    if principal.is_platform:
        if not requested:
            return None, [{"field": "tenant", "message": "platform admins name the tenant to run for"}]
        tenant = requested
    elif requested and requested != principal.tenant:
        return None, [{"field": "tenant", "message": "you can only launch for your own tenant"}]
    else:
        tenant = principal.tenant
    if not rt.tenants.exists(tenant):
        return None, [{"field": "tenant", "message": f"tenant {tenant!r} is not onboarded"}]
    if rt.tenants.offboarding(tenant):
        raise Conflict(f"tenant {tenant} is being offboarded; nothing new can start")
    return tenant, []


def submit(rt, principal, body: dict, correlation_id: str) -> dict:
    """Every problem with the request is reported at once; NetBox is asked only for a valid request."""
    tenant, errors = tenant_errors(rt, principal, body.get("tenant"))
    entry = rt.catalogue.get(body["playbook"])
    if entry is not None and entry.internal:  # a cluster stage: only a cluster's pipeline runs it
        entry = None
    if entry is None:
        known = ", ".join(sorted(n for n, e in rt.catalogue.items() if not e.internal)) or "none"
        errors.append({"field": "playbook", "message": f"not in the catalogue; known: {known}"})
    elif not principal.at_least(entry.min_role):
        raise Forbidden(f"{entry.name} needs the {entry.min_role} role")
    if errors:
        if entry is not None:  # the variables can still be checked without the tenant's nodes
            errors += launch.check(entry, body | {"limit": []}, set())[1]
        raise ValidationFailed(errors)
    # A playbook that touches no nodes and names none needs nothing from NetBox.
    needs_nodes = entry.touches_nodes or bool(body.get("limit"))
    hosts = rt.inventory.nodes(tenant) if needs_nodes else {}
    projects = _node_projects(rt, tenant, principal) if needs_nodes else {}
    if principal.projects is not None and not principal.at_least(Role.TENANT_ADMIN):
        # A caller bound to projects runs on its projects' nodes only.
        hosts = {name: i for name, i in hosts.items() if projects.get(name) in principal.projects}
    checked, errors = launch.check(entry, body, set(hosts))
    if errors:
        raise ValidationFailed(errors)
    job = {
        "id": new_id(), "tenant": tenant, "playbook": entry.name, "status": JobStatus.QUEUED,
        "variables": checked.variables, "limit": checked.limit, "nodes": checked.nodes,
        "node_ids": {n: hosts[n] for n in checked.nodes}, "timeout": checked.timeout,
        "created_at": time.time(), "submitted_by": principal.as_dict(), "correlation_id": correlation_id,
        "project": _one_project(projects, checked.nodes),
    }
    enqueue(rt, job, principal)
    return job


def _node_projects(rt, tenant: str, principal) -> dict[str, str | None]:
    """node -> project, read only when it matters (a caller bound to projects)."""
    if principal.projects is None or principal.at_least(Role.TENANT_ADMIN):
        return {}
    return {h.node.name: h.project for h in rt.fleet.held_by(tenant)}


def _one_project(projects: dict, nodes: list[str]) -> str | None:
    """The project a job belongs to, when all its nodes are in one."""
    found = {projects.get(n) for n in nodes}
    return found.pop() if len(found) == 1 else None


def enqueue(rt, job: dict, principal) -> None:
    """One MULTI (RQ opens it): the RQ job, its queue entry, our record and the audit record land together."""
    pipe = rt.store.rq.pipeline()
    rt.queue(job["tenant"]).enqueue_call(
        "runner_api.execution.run_job", args=[job["id"]], job_id=job["id"], timeout=job["timeout"] + RQ_GRACE,
        result_ttl=3600, failure_ttl=7 * 86400, description=f"{job['tenant']}/{job['playbook']}", pipeline=pipe)
    rt.jobs.create(pipe, job)
    audit.record(None, principal, "job.submit", f"job:{job['id']}", job["correlation_id"], 201, pipe=pipe,
                 tenant=job["tenant"])
    rt.store.wake_workers(pipe)
    pipe.execute()


def cancel(rt, principal, job: dict, correlation_id: str) -> dict:
    status = JobStatus(job["status"])
    if status.finished:
        raise Conflict(f"job {job['id']} already finished ({status})")
    now = time.time()
    reason = f"canceled by {principal.subject}"
    canceled = rt.store.redis.eval(CANCEL_QUEUED, 2, store.job_key(job["id"]),
                                   f"rq:queue:{store.queue_name(job['tenant'])}", job["id"], now, reason)
    pipe = rt.store.redis.pipeline()
    if canceled:
        EventLog(rt.store.redis, job["id"]).publish(
            {"event": END, "status": "canceled", "reason": reason, "created": now,
             "correlation_id": job["correlation_id"]}, pipe=pipe)
        metrics.record_outcome(pipe, job["tenant"], job["playbook"], "canceled", None)
    else:  # a worker has it: its horse sees the flag within a second and stops ansible-runner
        rt.jobs.update(job["id"], pipe=pipe, cancel_requested=principal.subject)
    pipe.execute()
    return rt.jobs.get(job["id"])
