"""Jobs: launch, list, read, follow (SSE or JSON pages) and cancel. Foreign jobs answer 404."""

import json
import re

from flask import Blueprint, Response, g, request, stream_with_context

from runner_api import submission
from runner_api.auth import requires
from runner_api.errors import NotFound
from runner_api.events import END, EventLog
from runner_api.jobs import JobStatus, public
from runner_api.launch import REQUEST_SCHEMA
from runner_api.openapi import body_json, operation, query_args
from runner_api.principal import Role
from runner_api.runtime import runtime

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
JOB_ID = re.compile(r"^[0-9a-f-]{36}$")
EVENT_ID = {"type": "string", "pattern": r"^\d{1,19}-\d{1,19}$"}
LIST_QUERY = {
    "status": {"type": "string", "enum": [str(s) for s in JobStatus]},
    "playbook": {"type": "string", "maxLength": 100},
    "tenant": {"type": "string", "maxLength": 50},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    "offset": {"type": "integer", "minimum": 0, "maximum": 1000000, "default": 0},
}
EVENTS_QUERY = {"after": EVENT_ID, "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
SSE_KEEPALIVE_MS = 15000


def _in_project(job: dict) -> bool:
    """A caller bound to projects sees jobs of its projects, and the tenant's project-less ones."""
    return not job.get("project") or g.principal.may_use_project(job["project"])


def visible_job(job_id: str) -> dict:
    job = runtime().jobs.get(job_id) if JOB_ID.match(job_id) else None
    if job is None or not g.principal.sees_tenant(job["tenant"]) or not _in_project(job):
        raise NotFound(f"no job {job_id}")
    return job


@bp.post("")
@requires(Role.TENANT_OPERATOR)
@operation("Launch a catalogued playbook for your tenant", tag="jobs", body=REQUEST_SCHEMA,
           responses={"201": {"description": "queued"}})
def create_job():
    job = submission.submit(runtime(), g.principal, body_json(REQUEST_SCHEMA), g.correlation_id)
    g.audited = True  # recorded in the same MULTI as the job itself
    return public(job), 201, {"Location": f"/v1/jobs/{job['id']}"}


@bp.get("")
@requires(Role.TENANT_VIEWER)
@operation("List jobs, newest first", tag="jobs", query=LIST_QUERY)
def list_jobs():
    args = query_args(LIST_QUERY)
    tenant = args.get("tenant") if g.principal.is_platform else g.principal.tenant
    if not g.principal.is_platform and args.get("tenant") not in (None, g.principal.tenant):
        return {"items": [], "total": 0, "next_offset": None}
    jobs, total = runtime().jobs.page(tenant, args["offset"], args["limit"], args.get("status"), args.get("playbook"))
    more = len(jobs) == args["limit"] and (total < 0 or args["offset"] + len(jobs) < total)
    jobs = [j for j in jobs if _in_project(j)]
    return {"items": [public(j) for j in jobs], "total": total if total >= 0 else None,
            "next_offset": args["offset"] + len(jobs) if more else None}


@bp.get("/<job_id>")
@requires(Role.TENANT_VIEWER)
@operation("One job", tag="jobs")
def get_job(job_id):
    return public(visible_job(job_id))


@bp.post("/<job_id>/cancel")
@requires(Role.TENANT_OPERATOR)
@operation("Cancel a queued or running job (stops ansible-runner)", tag="jobs",
           responses={"202": {"description": "canceled, or cancel requested"}, "409": {"description": "finished"}})
def cancel_job(job_id):
    job = submission.cancel(runtime(), g.principal, visible_job(job_id), g.correlation_id)
    g.audit = ("job.cancel", f"job:{job_id}", job["tenant"])
    return public(job), 202


@bp.get("/<job_id>/events")
@requires(Role.TENANT_VIEWER)
@operation("Job events: an SSE stream (Accept: text/event-stream, resumes from Last-Event-ID) or JSON pages",
           tag="jobs", query=EVENTS_QUERY,
           responses={"200": {"description": "events", "content": {"application/json": {},
                                                                   "text/event-stream": {}}}})
def job_events(job_id):
    job = visible_job(job_id)
    args = query_args(EVENTS_QUERY)
    log = EventLog(runtime().store.redis, job["id"])
    if request.accept_mimetypes.best_match(["application/json", "text/event-stream"]) == "text/event-stream":
        resume = request.headers.get("Last-Event-ID") or args.get("after") or "0"
        if not re.match(EVENT_ID["pattern"], resume):
            resume = "0"
        return Response(stream_with_context(_sse(log, job["id"], resume)), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    events = log.read(args.get("after") or "-", args["limit"])
    items = [{"id": eid} | event for eid, event in events]
    done = any(e.get("event") == END for e in items)
    # next_after is where to continue polling (null once the job_end event was served).
    cursor = items[-1]["id"] if items else args.get("after")
    return {"items": items, "next_after": None if done else cursor, "finished": done}


def _sse(log: EventLog, job_id: str, after: str):
    jobs = runtime().jobs
    yield "retry: 2000\n\n"
    for event_id, event in log.read(after, 1000000):
        yield _frame(event_id, event)
        after = event_id
        if event.get("event") == END:
            return
    while True:
        batch = log.wait(after, SSE_KEEPALIVE_MS)
        if not batch:
            job = jobs.get(job_id)
            if job is None:
                return
            yield ": keepalive\n\n"
            continue
        for event_id, event in batch:
            yield _frame(event_id, event)
            after = event_id
            if event.get("event") == END:
                return


def _frame(event_id: str, event: dict) -> str:
    return f"id: {event_id}\nevent: {event.get('event', 'message')}\ndata: {json.dumps(event)}\n\n"
