"""A tenant's quotas: limits, usage from NetBox and percentages per tenant and project; its alerts; its cost."""

from flask import Blueprint, g

from runner_api import alerts, costs
from runner_api.api.tenants import visible_tenant
from runner_api.auth import requires
from runner_api.errors import NotFound
from runner_api.openapi import operation, query_args
from runner_api.principal import Role
from runner_api.reservations import quota_report
from runner_api.runtime import runtime

bp = Blueprint("quotas", __name__, url_prefix="/v1/tenants")
ALERTS_QUERY = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}


@bp.get("/<slug>/quota")
@requires(Role.TENANT_VIEWER)
@operation("The tenant's quotas and usage (tenant and projects), computed from NetBox", tag="quotas")
def get_quota(slug):
    visible_tenant(slug)
    report = quota_report(runtime().fleet, slug)
    report["projects"] = {p: v for p, v in report["projects"].items() if g.principal.may_use_project(p)}
    return report


@bp.get("/<slug>/alerts")
@requires(Role.TENANT_VIEWER)
@operation("Quota alerts raised for the tenant, newest first", tag="quotas", query=ALERTS_QUERY)
def get_alerts(slug):
    visible_tenant(slug)
    return {"items": alerts.recent(runtime().store.redis, slug, query_args(ALERTS_QUERY)["limit"])}


@bp.get("/<slug>/cost")
@requires(Role.TENANT_VIEWER)
@operation("What the tenant's nodes cost per hour now, by project, and what its clusters have accrued",
           tag="quotas")
def get_cost(slug):
    visible_tenant(slug)
    rt = runtime()
    if not rt.settings.cost_enabled:
        raise NotFound("cost reporting is turned off on this installation")
    live = [c for c in rt.clusters.of_tenant(slug) if c["status"] != "deleted"]
    report = costs.running(rt.fleet.held_by(slug), live, rt.settings.currency)
    if g.principal.projects is not None and not g.principal.at_least(Role.TENANT_ADMIN):
        report["hourly_by_project"] = {p: v for p, v in report["hourly_by_project"].items()
                                       if g.principal.may_use_project(p)}
    return report
