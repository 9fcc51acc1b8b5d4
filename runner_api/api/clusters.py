"""Clusters: ask for GPUs with topology constraints, get nodes reserved and provisioned; DELETE wipes them.

POST with dry_run=true answers the placement and its cost without reserving anything. Foreign
clusters answer 404; a caller bound to projects sees and creates clusters in those projects only.
"""

import re

from flask import Blueprint, g

from runner_api import clusters, costs
from runner_api.alerts import publish, refused
from runner_api.auth import requires
from runner_api.errors import ApiError, Conflict, NotFound, ServiceUnavailable, ValidationFailed
from runner_api.openapi import body_json, operation, query_args
from runner_api.placement import Level, Unplaceable
from runner_api.principal import Role
from runner_api.quotas import QuotaExceeded
from runner_api.reservations import LockLost, LockTimeout, UnknownProject, decide
from runner_api.runtime import runtime
from runner_api.submission import tenant_errors

bp = Blueprint("clusters", __name__, url_prefix="/v1/clusters")
NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"
CLUSTER_ID = re.compile(r"^[0-9a-f-]{36}$")
CREATE = {
    "type": "object", "required": ["name", "kind"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": NAME, "description": "unique within the tenant"},
        "kind": {"type": "string", "enum": ["slurm", "k8s"]},
        "tenant": {"type": "string", "maxLength": 50, "description": "platform admins name the tenant"},
        "project": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]{0,49}$"},
        "gpus": {"type": "integer", "minimum": 1, "maximum": 100000},
        "nodes": {"type": "integer", "minimum": 1, "maximum": 10000},
        "vendor": {"type": "string", "maxLength": 50},
        "model": {"type": "string", "maxLength": 100},
        "min_gpu_memory_gb": {"type": "integer", "minimum": 0, "maximum": 100000},
        "interconnect": {"type": "string", "enum": [str(level) for level in Level],
                         "description": "nvlink: one NVLink domain; leaf: one leaf; pod: one pod; any: one site"},
        "ib": {"type": "boolean", "description": "every node needs InfiniBand"},
        "image": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,99}$",
                  "description": "golden image (NetBox platform slug) to deploy"},
        "dry_run": {"type": "boolean", "description": "answer the placement and its cost; reserve nothing"},
    },
}
LIST_QUERY = {"tenant": {"type": "string", "maxLength": 50}, "project": {"type": "string", "maxLength": 50}}


class QuotaExceededError(ApiError):
    status = 409
    title = "Quota exceeded"


class NoCapacity(ApiError):
    status = 409
    title = "No capacity"


def _in_scope(cluster: dict) -> bool:
    """A caller bound to projects sees their clusters only; project-less ones belong to the whole tenant."""
    if cluster.get("project"):
        return g.principal.may_use_project(cluster["project"])
    return g.principal.projects is None or g.principal.at_least(Role.TENANT_ADMIN)


def visible_cluster(cluster_id: str) -> dict:
    rt = runtime()
    cluster = rt.clusters.get(cluster_id) if CLUSTER_ID.match(cluster_id) else None
    if cluster is None or not g.principal.sees_tenant(cluster["tenant"]) or not _in_scope(cluster):
        raise NotFound(f"no cluster {cluster_id}")
    return clusters.refresh(rt, cluster)


def _checked(body: dict) -> str:
    """The tenant to act for; every problem with the request at once."""
    rt = runtime()
    tenant, errors = tenant_errors(rt, g.principal, body.get("tenant"))
    if ("gpus" in body) == ("nodes" in body):
        errors.append({"field": "gpus", "message": "give exactly one of gpus or nodes"})
    project = body.get("project")
    if project and not g.principal.may_use_project(project):
        errors.append({"field": "project", "message": f"you are not a member of project {project}"})
    elif not project and g.principal.projects is not None and not g.principal.at_least(Role.TENANT_ADMIN):
        errors.append({"field": "project", "message": "name one of your projects: "
                                                       + ", ".join(g.principal.projects)})
    if errors:
        raise ValidationFailed(errors)
    return tenant


def _view(cluster: dict) -> dict:
    return clusters.public(cluster, runtime().settings.cost_enabled)


@bp.post("")
@requires(Role.TENANT_OPERATOR)
@operation("Ask for a cluster: quota check, placement, reservation, then the provisioning stages", tag="clusters",
           body=CREATE, responses={"202": {"description": "reserved; provisioning"},
                                   "200": {"description": "dry run: placement and cost"},
                                   "409": {"description": "quota exceeded, no capacity or name taken"},
                                   "422": {"description": "invalid request, every bad field named"}})
def create_cluster():
    body = body_json(CREATE)
    tenant = _checked(body)
    rt = runtime()
    g.audit = ("cluster.create" if not body.get("dry_run") else "cluster.estimate", f"cluster:{body['name']}",
               tenant)
    try:
        if body.get("dry_run"):
            return _estimate(rt, tenant, body)
        cluster = clusters.create(rt, g.principal, tenant, body, g.correlation_id)
    except QuotaExceeded as exc:
        publish(rt.store.redis, [refused(tenant, exc.violations)], rt.settings.alert_webhook_url,
                rt.settings.alert_webhook_secret)
        raise QuotaExceededError(str(exc), [{"field": "quota", "message": v} for v in exc.violations]) from None
    except Unplaceable as exc:
        raise NoCapacity(exc.reason) from None
    except clusters.NameTaken as exc:
        raise Conflict(str(exc)) from None
    except UnknownProject as exc:
        raise ValidationFailed([{"field": "project", "message": str(exc)}]) from None
    except LookupError as exc:  # a runner tenant without its NetBox tenant: an operator's mistake
        raise Conflict(f"{exc}; onboard the tenant again") from None
    except (LockTimeout, LockLost) as exc:
        raise ServiceUnavailable(str(exc)) from None
    g.audit = ("cluster.create", f"cluster:{cluster['id']}", tenant)
    return _view(cluster), 202, {"Location": f"/v1/clusters/{cluster['id']}"}


def _estimate(rt, tenant: str, body: dict) -> dict:
    decision = decide(rt.fleet, tenant, body.get("project"), clusters.request_of(body))
    out = {"dry_run": True, "tenant": tenant, "placement": clusters.placement_view(decision),
           "usage_after": decision.tenant_usage.as_dict()}
    if rt.settings.cost_enabled:
        out["estimate"] = costs.estimate(decision.placement.nodes, rt.settings.currency)
    return out


@bp.get("")
@requires(Role.TENANT_VIEWER)
@operation("Clusters you can see, newest first", tag="clusters", query=LIST_QUERY)
def list_clusters():
    args = query_args(LIST_QUERY)
    rt = runtime()
    if g.principal.is_platform:
        tenants = [args["tenant"]] if args.get("tenant") else [t.slug for t in rt.tenants.list()]
    else:
        tenants = [g.principal.tenant] if args.get("tenant") in (None, g.principal.tenant) else []
    items = [c for t in tenants for c in rt.clusters.of_tenant(t)
             if _in_scope(c) and args.get("project") in (None, c.get("project"))]
    return {"items": [_view(c) for c in items]}


@bp.get("/<cluster_id>")
@requires(Role.TENANT_VIEWER)
@operation("One cluster, with each stage's status and job", tag="clusters")
def get_cluster(cluster_id):
    return _view(visible_cluster(cluster_id))


@bp.delete("/<cluster_id>")
@requires(Role.TENANT_OPERATOR)
@operation("Delete a cluster: stop provisioning, wipe the nodes, release them", tag="clusters",
           responses={"202": {"description": "deleting"}})
def delete_cluster(cluster_id):
    cluster = visible_cluster(cluster_id)
    g.audit = ("cluster.delete", f"cluster:{cluster_id}", cluster["tenant"])
    return _view(clusters.delete(runtime(), g.principal, cluster)), 202
