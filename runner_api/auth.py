"""Bearer authentication (gpucloud tokens or a tenant's OIDC JWTs) and role checks."""

from functools import wraps

from flask import g, request

from runner_api import oidc
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
        return oidc.verify(token, tenant, config)
    except oidc.OidcError as exc:
        raise Unauthorized(str(exc)) from None


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
