"""API tokens: issued (shown once) and revoked by platform admins, or by tenant admins for their tenant."""

from flask import Blueprint, g

from runner_api.auth import requires
from runner_api.errors import Forbidden, NotFound, ValidationFailed
from runner_api.openapi import body_json, operation, query_args
from runner_api.principal import RANK, Role
from runner_api.runtime import runtime
from runner_api.tenants import SLUG

bp = Blueprint("tokens", __name__, url_prefix="/v1/tokens")
ISSUE = {"type": "object", "required": ["role"], "additionalProperties": False, "properties": {
    "role": {"type": "string", "enum": [str(r) for r in Role]},
    "tenant": {"type": "string", "pattern": SLUG.pattern},
    "description": {"type": "string", "maxLength": 200, "default": ""}}}
LIST_QUERY = {"tenant": {"type": "string", "maxLength": 50}}


def issue_checks(principal, role: Role, tenant: str | None) -> str | None:
    """The tenant the new token belongs to, after checking the caller may issue it."""
    if role is Role.PLATFORM_ADMIN:
        if not principal.is_platform:
            raise Forbidden("only platform admins issue platform-admin tokens")
        if tenant:
            raise ValidationFailed([{"field": "tenant", "message": "platform-admin tokens belong to no tenant"}])
        return None
    if not principal.is_platform:
        if tenant not in (None, principal.tenant):
            raise NotFound(f"no tenant {tenant}")
        if RANK[role] > RANK[principal.role]:
            raise Forbidden(f"you cannot issue a token above your own role ({principal.role})")
        tenant = principal.tenant
    if not tenant:
        raise ValidationFailed([{"field": "tenant", "message": "tenant tokens name their tenant"}])
    if runtime().tenants.get(tenant) is None:
        raise ValidationFailed([{"field": "tenant", "message": f"tenant {tenant!r} is not onboarded"}])
    return tenant


@bp.post("")
@requires(Role.TENANT_ADMIN)
@operation("Issue a token (the secret is shown only in this response)", tag="tokens", body=ISSUE,
           responses={"201": {"description": "issued"}})
def issue():
    body = body_json(ISSUE)
    role = Role(body["role"])
    tenant = issue_checks(g.principal, role, body.get("tenant"))
    token, record = runtime().tokens.issue(role, tenant, body.get("description", ""), g.principal.subject)
    g.audit = ("token.issue", f"token:{record.id}", tenant)
    return {"token": token, "id": record.id, "role": record.role, "tenant": record.tenant,
            "description": record.description}, 201


@bp.get("")
@requires(Role.TENANT_ADMIN)
@operation("Tokens you administer (never their secrets)", tag="tokens", query=LIST_QUERY)
def list_tokens():
    args = query_args(LIST_QUERY)
    tenant = args.get("tenant") if g.principal.is_platform else g.principal.tenant
    records = runtime().tokens.list(tenant)
    return {"items": [{"id": r.id, "role": r.role, "tenant": r.tenant, "description": r.description,
                       "created_at": r.created_at, "created_by": r.created_by} for r in records]}


@bp.delete("/<token_id>")
@requires(Role.TENANT_ADMIN)
@operation("Revoke a token", tag="tokens", responses={"204": {"description": "revoked"}})
def revoke(token_id):
    record = runtime().tokens.get(token_id)
    if record is None or not g.principal.sees_tenant(record.tenant):
        raise NotFound(f"no token {token_id}")
    g.audit = ("token.revoke", f"token:{token_id}", record.tenant)
    runtime().tokens.revoke(token_id)
    return "", 204
