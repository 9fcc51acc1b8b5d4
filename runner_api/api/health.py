"""Liveness, readiness (Redis and NetBox) and Prometheus metrics."""

import logging

from flask import Blueprint, Response, g

from runner_api import metrics
from runner_api.errors import Forbidden, ServiceUnavailable
from runner_api.openapi import operation
from runner_api.runtime import runtime

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
@operation("Liveness: the process answers", tag="health", public=True)
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
@operation("Readiness: Redis and NetBox answer", tag="health", public=True,
           responses={"200": {"description": "ready"}, "503": {"description": "a dependency is down"}})
def readyz():
    rt = runtime()
    checks = {}
    try:
        rt.store.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    try:
        rt.inventory.client().get("status")
        checks["netbox"] = "ok"
    except Exception as exc:  # reported as not ready; the cause (URL, error text) goes to the log only
        log.warning("readiness: NetBox check failed: %s", exc)
        checks["netbox"] = f"down: {type(exc).__name__}"
    if any(v != "ok" for v in checks.values()):
        error = ServiceUnavailable("not ready: " + "; ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"))
        error.errors = [{"field": k, "message": v} for k, v in checks.items()]
        raise error
    return {"status": "ready", "checks": checks}


@bp.get("/metrics")
@operation("Prometheus metrics (platform admins)", tag="health",
           responses={"200": {"description": "text exposition", "content": {"text/plain": {}}}})
def metrics_view():
    if not g.principal.is_platform:
        raise Forbidden("metrics are for platform admins")
    return Response(metrics.exposition(runtime().store.redis), mimetype="text/plain; version=0.0.4")
