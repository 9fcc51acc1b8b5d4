"""Tenants onboarded to the runner (they must exist in NetBox) and their OIDC registration."""

import logging

from flask import Blueprint, g

from runner_api import oidc
from runner_api.auth import requires
from runner_api.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from runner_api.openapi import body_json, operation
from runner_api.principal import TENANT_ROLES, Role
from runner_api.runtime import runtime
from runner_api.tenants import SLUG

bp = Blueprint("tenants", __name__, url_prefix="/v1/tenants")
CREATE = {"type": "object", "required": ["slug"], "additionalProperties": False, "properties": {
    "slug": {"type": "string", "pattern": SLUG.pattern},
    "concurrency": {"type": "integer", "minimum": 1, "maximum": 1000}}}
UPDATE = {"type": "object", "required": ["concurrency"], "additionalProperties": False, "properties": {
    "concurrency": {"type": "integer", "minimum": 1, "maximum": 1000}}}
OIDC = {"type": "object", "required": ["issuer", "audience"], "additionalProperties": False, "properties": {
    "issuer": {"type": "string", "maxLength": 500},
    "audience": {"type": "string", "maxLength": 500},
    "jwks_uri": {"type": "string", "maxLength": 1000},
    "jwks": {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "maxItems": 20}}},
    "role_claim": {"type": "string", "maxLength": 100, "default": "gpucloud_role"},
    "default_role": {"type": "string", "enum": [str(r) for r in TENANT_ROLES]}}}


def visible_tenant(slug: str):
    tenant = runtime().tenants.get(slug) if SLUG.match(slug) else None
    if tenant is None or not g.principal.sees_tenant(slug):
        raise NotFound(f"no tenant {slug}")
    return tenant


@bp.get("")
@requires(Role.TENANT_VIEWER)
@operation("Tenants you can see", tag="tenants")
def list_tenants():
    tenants = runtime().tenants.list()
    return {"items": [t.as_dict() for t in tenants if g.principal.sees_tenant(t.slug)]}


@bp.post("")
@requires(Role.PLATFORM_ADMIN)
@operation("Onboard a NetBox tenant to the runner", tag="tenants", body=CREATE,
           responses={"201": {"description": "created"}, "409": {"description": "exists"}})
def create_tenant():
    body = body_json(CREATE)
    rt = runtime()
    g.audit = ("tenant.create", f"tenant:{body['slug']}", body["slug"])
    if rt.tenants.get(body["slug"]):
        raise Conflict(f"tenant {body['slug']} is already onboarded")
    try:
        found = rt.inventory.client().get("tenancy/tenants", slug=body["slug"])["count"]
    except Exception as exc:  # a 503 for the caller; the cause goes to the log only
        logging.getLogger(__name__).warning("tenant check in NetBox failed: %s", exc)
        raise ServiceUnavailable("NetBox is unavailable, so the tenant cannot be checked") from None
    if not found:
        raise ValidationFailed([{"field": "slug", "message": "no NetBox tenant has this slug"}])
    tenant = rt.tenants.create(body["slug"], body.get("concurrency", rt.settings.default_concurrency))
    return tenant.as_dict(), 201


@bp.get("/<slug>")
@requires(Role.TENANT_VIEWER)
@operation("One tenant", tag="tenants")
def get_tenant(slug):
    return visible_tenant(slug).as_dict()


@bp.patch("/<slug>")
@requires(Role.PLATFORM_ADMIN)
@operation("Change a tenant's concurrency limit", tag="tenants", body=UPDATE)
def update_tenant(slug):
    visible_tenant(slug)
    body = body_json(UPDATE)
    g.audit = ("tenant.update", f"tenant:{slug}", slug)
    runtime().tenants.update(slug, body["concurrency"])
    return runtime().tenants.get(slug).as_dict()


@bp.put("/<slug>/oidc")
@requires(Role.TENANT_ADMIN)
@operation("Register the tenant's own OIDC issuer", tag="tenants", body=OIDC)
def put_oidc(slug):
    visible_tenant(slug)
    body = body_json(OIDC)
    g.audit = ("tenant.oidc.set", f"tenant:{slug}", slug)
    errors = oidc.validate_config(body, runtime().settings.oidc_allow_http_loopback)
    if errors:
        raise ValidationFailed(errors)
    if not runtime().tenants.claim_issuer(body["issuer"], slug):
        raise ValidationFailed([{"field": "issuer", "message": "already registered by another tenant"}])
    runtime().tenants.set_oidc(slug, body)
    return runtime().tenants.get(slug).as_dict()


@bp.delete("/<slug>/oidc")
@requires(Role.TENANT_ADMIN)
@operation("Remove the tenant's OIDC issuer", tag="tenants", responses={"204": {"description": "removed"}})
def delete_oidc(slug):
    visible_tenant(slug)
    g.audit = ("tenant.oidc.delete", f"tenant:{slug}", slug)
    runtime().tenants.set_oidc(slug, None)
    return "", 204
