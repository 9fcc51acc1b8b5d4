"""Bearer authentication (gpucloud tokens or a tenant's OIDC JWTs) and role checks."""

from dataclasses import replace
from functools import wraps

from flask import g, request

from runner_api import oidc, users
from runner_api.errors import Forbidden, Unauthorized
from runner_api.principal import Principal, Role
from runner_api.runtime import runtime


def authenticate() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    token = token.strip()
    rt = runtime()
    record = rt.tokens.lookup(token)
    if record:
        return record.principal()
    if oidc.looks_like_jwt(token):
        return _oidc_principal(rt, token)
    raise Unauthorized("unknown or revoked token")


def _oidc_principal(rt, token: str) -> Principal:
    issuer = oidc.unverified_issuer(token)
    tenant = rt.tenants.issuer_owner(issuer) if issuer else None
    config = rt.tenants.get(tenant).oidc if tenant and rt.tenants.get(tenant) else None
    if not config:
        raise Unauthorized("the token's issuer is not registered for any tenant")
    try:
        principal = oidc.verify(token, tenant, config)
    except oidc.OidcError as exc:
        raise Unauthorized(str(exc)) from None
    return _with_projects(rt, principal)


def _with_projects(rt, principal: Principal) -> Principal:
    """An OIDC user's projects come from the tenant's user record of their email. A tenant that keeps user
    records gives someone without one (removed, or never invited) no project; a tenant whose IdP alone
    manages its users keeps the tenant-wide default."""
    if principal.at_least(Role.TENANT_ADMIN):
        return principal
    store = users.of(rt)
    user = store.get(principal.tenant, principal.user) if principal.user else None
    if user is None:
        return replace(principal, projects=()) if store.list(principal.tenant) else principal
    return principal if user.projects is None else replace(principal, projects=tuple(user.projects))


def requires(role: Role):
    """Caller must hold at least `role`; the role is also published in the OpenAPI spec."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not g.principal.at_least(role):
                raise Forbidden(f"this needs the {role} role; you are {g.principal.role}")
            return view(*args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorate
