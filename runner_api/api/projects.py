"""A tenant's projects and their quotas: listed to its users (the projects each may use), managed by its admins."""

import logging
from contextlib import contextmanager

from flask import Blueprint, g

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError
from runner_api import users
from runner_api.api.tenants import visible_tenant
from runner_api.auth import requires
from runner_api.errors import NotFound, ServiceUnavailable
from runner_api.openapi import body_json, operation
from runner_api.principal import Role
from runner_api.projects import NAME, PROJECT, Projects, tenant_quota
from runner_api.runtime import runtime

bp = Blueprint("projects", __name__, url_prefix="/v1/tenants/<slug>/projects")
CREATE = {"type": "object", "required": ["name"], "additionalProperties": False,
          "properties": {"name": {"type": "string", "pattern": NAME.pattern}} | PROJECT["properties"]}
QUOTA_NOTE = ("quota: gpus, gpus_by_model, cpus, memory_gb, storage_tb, each optional (absent: only the tenant's "
              "quota applies) and at most the tenant's.")


def projects() -> Projects:
    return Projects(runtime().inventory.client(), runtime().store.redis)


@contextmanager
def netbox():
    try:
        yield
    except NetBoxError as exc:
        logging.getLogger(__name__).warning("projects: NetBox failed: %s", exc)
        raise ServiceUnavailable("NetBox is unavailable, so the projects cannot be read or changed") from None


def _visible(slug: str, name: str, found: dict) -> dict:
    if name not in found or not g.principal.may_use_project(name):
        raise NotFound(f"no project {name}")
    return found[name]


@bp.get("")
@requires(Role.TENANT_VIEWER)
@operation("The tenant's projects you may use, with their quotas, and the tenant's quota", tag="projects")
def list_projects(slug):
    visible_tenant(slug)
    with netbox():
        tenant, found = projects().read(slug)
    items = [{"name": n} | p for n, p in sorted(found.items()) if g.principal.may_use_project(n)]
    return {"items": items, "tenant_quota": tenant_quota(tenant)}


@bp.get("/<name>")
@requires(Role.TENANT_VIEWER)
@operation("One project", tag="projects")
def get_project(slug, name):
    visible_tenant(slug)
    with netbox():
        _, found = projects().read(slug)
    return {"name": name} | _visible(slug, name, found)


@bp.post("")
@requires(Role.TENANT_ADMIN)
@operation("Create a project. " + QUOTA_NOTE, tag="projects", body=CREATE,
           responses={"201": {"description": "created"}, "409": {"description": "exists"}})
def create_project(slug):
    visible_tenant(slug)
    body = body_json(CREATE)
    g.audit = ("project.create", f"project:{slug}/{body['name']}", slug)
    spec = {k: v for k, v in body.items() if k != "name"}
    with netbox():
        return {"name": body["name"]} | projects().put(slug, body["name"], spec, create=True), 201


@bp.patch("/<name>")
@requires(Role.TENANT_ADMIN)
@operation("Change a project's description or quota (a quota given replaces the project's). " + QUOTA_NOTE,
           tag="projects", body=PROJECT)
def update_project(slug, name):
    visible_tenant(slug)
    body = body_json(PROJECT)
    g.audit = ("project.update", f"project:{slug}/{name}", slug)
    with netbox():
        return {"name": name} | projects().put(slug, name, body, create=False)


@bp.delete("/<name>")
@requires(Role.TENANT_ADMIN)
@operation("Delete a project (refused while nodes are booked to it); it leaves every user's project list",
           tag="projects", responses={"204": {"description": "deleted"}, "409": {"description": "in use"}})
def delete_project(slug, name):
    visible_tenant(slug)
    g.audit = ("project.delete", f"project:{slug}/{name}", slug)
    with netbox():
        projects().delete(slug, name)
    users.of(runtime()).drop_project(slug, name)
    return "", 204
