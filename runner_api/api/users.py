"""A tenant's users (tenant admins of that tenant, or platform admins), and accepting an invitation (public)."""

import logging

from flask import Blueprint, g

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError
from runner_api import users
from runner_api.api.tenants import visible_tenant
from runner_api.auth import requires
from runner_api.errors import Forbidden, NotFound, ServiceUnavailable, ValidationFailed
from runner_api.openapi import body_json, operation
from runner_api.principal import RANK, TENANT_ROLES, Role
from runner_api.projects import NAME, Projects
from runner_api.runtime import runtime

bp = Blueprint("users", __name__)
ROLES = [str(r) for r in TENANT_ROLES]
PROJECT_NAMES = {"type": ["array", "null"], "maxItems": 100, "items": {"type": "string", "pattern": NAME.pattern}}
INVITE = {"type": "object", "required": ["email"], "additionalProperties": False, "properties": {
    "email": {"type": "string", "minLength": 3, "maxLength": 254},
    "role": {"type": "string", "enum": ROLES},
    "projects": PROJECT_NAMES}}
CHANGE = {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
    "role": {"type": "string", "enum": ROLES},
    "projects": PROJECT_NAMES}}
ACCEPT = {"type": "object", "required": ["code"], "additionalProperties": False, "properties": {
    "code": {"type": "string", "maxLength": 200}}}
PROJECTS_NOTE = "projects: the projects the user may use; null or absent means every project (tenant admins: always)."


def _checks(slug: str, role: Role | None, projects: list[str] | None) -> None:
    """The caller may grant the role, and the projects exist; every problem at once."""
    if role is not None and RANK[role] > RANK[g.principal.role]:
        raise Forbidden(f"you cannot grant a role above your own ({g.principal.role})")
    if not projects:
        return
    try:
        _, known = Projects(runtime().inventory.client(), runtime().store.redis).read(slug)
    except NetBoxError as exc:
        logging.getLogger(__name__).warning("project check in NetBox failed: %s", exc)
        raise ServiceUnavailable("NetBox is unavailable, so the projects cannot be checked") from None
    errors = [{"field": f"projects[{i}]", "message": f"no project {p} in tenant {slug}"}
              for i, p in enumerate(projects) if p not in known]
    if errors:
        raise ValidationFailed(errors)


@bp.get("/v1/tenants/<slug>/users")
@requires(Role.TENANT_ADMIN)
@operation("The tenant's users (never their invitation codes)", tag="users")
def list_users(slug):
    visible_tenant(slug)
    return {"items": [u.as_dict() for u in users.of(runtime()).list(slug)]}


@bp.post("/v1/tenants/<slug>/users")
@requires(Role.TENANT_ADMIN)
@operation("Invite a user with a tenant role (the invitation code is shown only in this response; inviting a "
           "user who has not accepted yet replaces their code). " + PROJECTS_NOTE, tag="users", body=INVITE,
           responses={"201": {"description": "invited"}, "409": {"description": "the user is already active"}})
def invite(slug):
    tenant = visible_tenant(slug)
    body = body_json(INVITE)
    role = Role(body.get("role", tenant.default_role))
    g.audit = ("user.invite", f"user:{users.normalise(body['email'])}", slug)
    _checks(slug, role, body.get("projects"))
    code, user = users.of(runtime()).invite(slug, body["email"], role, body.get("projects"), g.principal.subject)
    return user.as_dict() | {"invitation": {"code": code, "expires_at": user.expires_at}}, 201


@bp.patch("/v1/tenants/<slug>/users/<email>")
@requires(Role.TENANT_ADMIN)
@operation("Change a user's role or projects; their tokens follow. " + PROJECTS_NOTE, tag="users", body=CHANGE)
def change(slug, email):
    visible_tenant(slug)
    body = body_json(CHANGE)
    g.audit = ("user.change", f"user:{users.normalise(email)}", slug)
    store = users.of(runtime())
    if store.get(slug, email) is None:
        raise NotFound(f"no user {users.normalise(email)}")
    role = Role(body["role"]) if "role" in body else None
    _checks(slug, role, body.get("projects"))
    return store.change(slug, email, role, body.get("projects", ...)).as_dict()


@bp.delete("/v1/tenants/<slug>/users/<email>")
@requires(Role.TENANT_ADMIN)
@operation("Remove a user: their invitation and every token they hold are revoked", tag="users",
           responses={"204": {"description": "removed"}})
def remove(slug, email):
    visible_tenant(slug)
    g.audit = ("user.remove", f"user:{users.normalise(email)}", slug)
    if not users.of(runtime()).remove(slug, email):
        raise NotFound(f"no user {users.normalise(email)}")
    return "", 204


@bp.post("/v1/invitations/accept")
@operation("Exchange an invitation code for an API token bound to the invited user (the code works once; the "
           "token is shown only in this response)", tag="users", body=ACCEPT, public=True,
           responses={"201": {"description": "accepted"},
                      "422": {"description": "unknown, used or expired code"}})
def accept():
    body = body_json(ACCEPT)
    rt = runtime()
    g.audit = ("invitation.accept", "invitation", None)
    try:
        token, record, user = users.of(rt).accept(body["code"], lambda t: rt.tenants.get(t) is not None)
    except users.InvitationInvalid:
        raise ValidationFailed([{"field": "code", "message": "unknown, used or expired invitation code"}]) from None
    g.audit = ("invitation.accept", f"user:{user.email}", record.tenant)
    return {"token": token, "id": record.id, "role": record.role, "tenant": record.tenant, "user": user.email,
            "projects": record.projects}, 201
