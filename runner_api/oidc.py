"""Per-tenant OIDC: a tenant registers its own issuer, so its IAM realm signs its users' JWTs.

Verification uses PyJWT: signature against the tenant's JWKS (inline, or fetched from jwks_uri and
cached), plus iss, aud, exp (and nbf/iat when present). Only asymmetric algorithms are accepted, so
a token signed with the public key as an HMAC secret is refused. The role comes from a claim and
can only be a tenant role; no JWT ever yields platform-admin.
"""

import threading
from urllib.parse import urlparse

import jwt

from runner_api.principal import RANK, TENANT_ROLES, Principal, Role

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 30


class OidcError(Exception):
    pass


_clients: dict[str, jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def unverified_issuer(token: str) -> str | None:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None


def validate_config(config: dict, allow_http_loopback: bool = False) -> list[dict]:
    """Errors in a tenant's OIDC registration, each naming its field.

    Only https: the API fetches jwks_uri itself, so a plain-http URL would let a tenant admin aim it
    at services on the API's own network. Loopback http is for labs and tests (a setting)."""
    errors = []
    expected = "an https:// URL" + (" (or http on loopback)" if allow_http_loopback else "")
    issuer = config.get("issuer", "")
    if not _acceptable_url(issuer, allow_http_loopback):
        errors.append({"field": "issuer", "message": f"expected {expected}"})
    if bool(config.get("jwks_uri")) == bool(config.get("jwks")):
        errors.append({"field": "jwks_uri", "message": "give exactly one of jwks_uri or jwks"})
    if config.get("jwks_uri") and not _acceptable_url(config["jwks_uri"], allow_http_loopback):
        errors.append({"field": "jwks_uri", "message": f"expected {expected}"})
    if config.get("jwks"):
        try:
            keys = jwt.PyJWKSet.from_dict(config["jwks"]).keys
            if any(k.algorithm_name == "HS256" or k.key_type == "oct" for k in keys):
                errors.append({"field": "jwks", "message": "symmetric keys are not accepted"})
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            errors.append({"field": "jwks", "message": f"not a usable JWK set: {exc}"})
    if config.get("default_role") and config["default_role"] not in [str(r) for r in TENANT_ROLES]:
        errors.append({"field": "default_role", "message": f"expected one of {[str(r) for r in TENANT_ROLES]}"})
    return errors


def _acceptable_url(url: str, allow_http_loopback: bool) -> bool:
    parsed = urlparse(url or "")
    if parsed.scheme == "https" and parsed.hostname:
        return True
    return allow_http_loopback and parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")


def _signing_key(token: str, config: dict):
    if config.get("jwks"):
        header = jwt.get_unverified_header(token)
        keys = jwt.PyJWKSet.from_dict(config["jwks"]).keys
        matching = [k for k in keys if header.get("kid") in (None, k.key_id)]
        if not matching:
            raise OidcError("no key in the tenant's JWKS matches the token's kid")
        return matching[0]
    with _clients_lock:
        client = _clients.get(config["jwks_uri"])
        if client is None:
            client = _clients[config["jwks_uri"]] = jwt.PyJWKClient(config["jwks_uri"], cache_keys=True, lifespan=300)
    return client.get_signing_key_from_jwt(token)


def verify(token: str, tenant: str, config: dict) -> Principal:
    try:
        key = _signing_key(token, config)
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=config["audience"],
            issuer=config["issuer"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except (jwt.PyJWTError, OidcError) as exc:
        raise OidcError(f"token rejected: {exc}") from None
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    return Principal(subject=f"oidc:{claims['sub']}", role=_role(claims, config), tenant=tenant, via="oidc",
                     user=email)


def _role(claims: dict, config: dict) -> Role:
    raw = claims.get(config.get("role_claim", "gpucloud_role"))
    values = raw if isinstance(raw, list) else [raw]
    roles = [Role(v) for v in values if v in [str(r) for r in TENANT_ROLES]]
    if roles:
        return max(roles, key=lambda r: RANK[r])
    if config.get("default_role"):
        return Role(config["default_role"])
    raise OidcError(f"token carries no tenant role in claim {config.get('role_claim', 'gpucloud_role')!r}")
