"""Onboarding and offboarding tenants (platform admins), and where a tenant's onboarding stands."""

import logging

from flask import Blueprint, g

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError
from runner_api import onboarding
from runner_api.api.tenants import OIDC
from runner_api.auth import requires
from runner_api.errors import NotFound, ServiceUnavailable, ValidationFailed
from runner_api.onboarding import FlowStatus
from runner_api.openapi import body_json, operation
from runner_api.principal import TENANT_ROLES, Role
from runner_api.projects import NAME, PROJECT, QUOTA
from runner_api.runtime import runtime
from runner_api.tenants import SLUG, Realm

bp = Blueprint("onboarding", __name__)
ROLES = [str(r) for r in TENANT_ROLES]
EMAIL = {"type": "string", "minLength": 3, "maxLength": 254}
PROJECT_NAMES = {"type": "array", "maxItems": 100, "items": {"type": "string", "pattern": NAME.pattern}}
TENANT_QUOTA = {"type": "object", "additionalProperties": False, "properties": QUOTA["properties"] | {
    "alert_thresholds": {"type": "array", "maxItems": 10, "items": {"type": "integer", "minimum": 1,
                                                                    "maximum": 1000}}}}
NETWORKS = {"type": "object", "additionalProperties": False, "properties": {
    "pool": {"type": "string", "pattern": SLUG.pattern, "default": onboarding.DEFAULT_POOL},
    "site": {"type": "string", "maxLength": 100},
    "vlans": {"oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 64},
        {"type": "array", "minItems": 1, "maxItems": 64, "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "maxLength": 32}}}}]},
    "prefix_length": {"type": "integer", "minimum": 8, "maximum": 30, "default": 24}}}
REQUEST = {"type": "object", "required": ["slug", "admin"], "additionalProperties": False, "properties": {
    "slug": {"type": "string", "pattern": SLUG.pattern},
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "description": {"type": "string", "maxLength": 200},
    "concurrency": {"type": "integer", "minimum": 1, "maximum": 1000},
    "quota": TENANT_QUOTA,
    "identity": {"type": "object", "additionalProperties": False, "properties": {
        "realm": {"type": "string", "enum": [str(r) for r in Realm], "default": "token"},
        "default_role": {"type": "string", "enum": ROLES, "default": str(Role.TENANT_VIEWER)},
        "oidc": OIDC}},
    "admin": {"type": "object", "required": ["email"], "additionalProperties": False,
              "properties": {"email": EMAIL}},
    "networks": NETWORKS,
    "projects": {"type": "object", "maxProperties": 100, "propertyNames": {"pattern": NAME.pattern},
                 "additionalProperties": PROJECT},
    "users": {"type": "array", "maxItems": 500, "items": {
        "type": "object", "required": ["email"], "additionalProperties": False, "properties": {
            "email": EMAIL, "role": {"type": "string", "enum": ROLES}, "projects": PROJECT_NAMES}}}}}
FLOW = ("The body is the flow's record: status (running, ready, waiting, failed, offboarded), changed (whether "
        "this call changed anything) and per step its status (pending, running, done, skipped, waiting, failed), "
        "changed, detail and error. A failed flow answers with status failed and the failing step's error; call "
        "again (with the request fixed where the error says so) to resume it.")


def _netbox_down(exc: NetBoxError):
    logging.getLogger(__name__).warning("onboarding: NetBox failed: %s", exc)
    return ServiceUnavailable("NetBox is unavailable; nothing was started, call again later")


@bp.post("/v1/onboardings")
@requires(Role.PLATFORM_ADMIN)
@operation("Onboard a tenant, or resume or update its onboarding (idempotent: re-send the same request)",
           tag="onboarding", body=REQUEST, responses={
               "201": {"description": "a new onboarding ran; " + FLOW + " The invitation codes of the users it "
                                        "invited are in `invitations`, shown only in this response."},
               "200": {"description": "an existing onboarding ran again; " + FLOW},
               "409": {"description": "an onboarding or offboarding of the tenant is running"}})
def onboard():
    request = body_json(REQUEST)
    rt = runtime()
    g.audit = ("tenant.onboard", f"tenant:{request['slug']}", request["slug"])
    errors = onboarding.validate(request, rt.settings.oidc_allow_http_loopback)
    if errors:
        raise ValidationFailed(errors)
    try:
        record, invitations, created = onboarding.onboard(rt, request, g.principal.subject)
    except NetBoxError as exc:
        raise _netbox_down(exc) from None
    return record | {"invitations": invitations}, 201 if created else 200


@bp.get("/v1/onboardings/<slug>")
@requires(Role.TENANT_ADMIN)
@operation("Where a tenant's onboarding (or offboarding) stands, step by step", tag="onboarding",
           responses={"200": {"description": FLOW}})
def get_onboarding(slug):
    record = onboarding.load(runtime().store.redis, slug) if SLUG.match(slug) else None
    if record is None or not g.principal.sees_tenant(slug):
        raise NotFound(f"no onboarding of tenant {slug}")
    return record


@bp.post("/v1/offboardings/<slug>")
@requires(Role.PLATFORM_ADMIN)
@operation("Offboard a tenant: release its clusters, users, tokens, projects and networks to the pools "
           "(idempotent: call again to resume)", tag="onboarding", responses={
               "200": {"description": "offboarded, or failed at a step; " + FLOW},
               "202": {"description": "waiting for the tenant's clusters to be released; call again"},
               "409": {"description": "the tenant has queued or running jobs, or a flow of it is running"}})
def offboard(slug):
    if not SLUG.match(slug):
        raise NotFound(f"no tenant {slug}")
    g.audit = ("tenant.offboard", f"tenant:{slug}", slug)
    try:
        record = onboarding.offboard(runtime(), slug, g.principal.subject)
    except NetBoxError as exc:
        raise _netbox_down(exc) from None
    return record, 202 if record["status"] == FlowStatus.WAITING else 200
