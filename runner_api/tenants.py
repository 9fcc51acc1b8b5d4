"""Tenants known to the runner: a NetBox tenant slug plus runner policy (concurrency, OIDC)."""

import json
import re
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from runner_api import store

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


class Realm(StrEnum):
    """Where a tenant's users authenticate: gpucloud tokens only, or also JWTs of the tenant's OIDC issuer."""

    TOKEN = "token"
    OIDC = "oidc"


@dataclass
class Tenant:
    slug: str
    concurrency: int
    created_at: float
    oidc: dict | None = field(default=None)
    realm: str = Realm.TOKEN
    default_role: str = "tenant-viewer"  # the role a user invited without one gets

    def as_dict(self) -> dict:
        data = asdict(self)
        if self.oidc:
            data["oidc"] = {k: v for k, v in self.oidc.items() if k != "jwks"} | {"jwks_inline": "jwks" in self.oidc}
        return data


class TenantStore:
    def __init__(self, redis):
        self.redis = redis
        self._known: dict[str, float] = {}  # slug -> until when it is known to be onboarded

    def exists(self, slug: str) -> bool:
        """Cached for a few seconds: every launch asks, and tenants are not removed while in use."""
        if self._known.get(slug, 0) > time.monotonic():
            return True
        if not self.redis.exists(store.tenant_key(slug)):
            return False
        self._known[slug] = time.monotonic() + 5
        return True

    def get(self, slug: str) -> Tenant | None:
        raw = self.redis.hgetall(store.tenant_key(slug))
        if not raw:
            return None
        oidc = json.loads(raw["oidc"]) if raw.get("oidc") else None
        return Tenant(slug, int(raw["concurrency"]), float(raw["created_at"]), oidc,
                      raw.get("realm", Realm.TOKEN), raw.get("default_role", "tenant-viewer"))

    def list(self) -> list[Tenant]:
        return [t for t in (self.get(s) for s in sorted(self.redis.smembers(store.TENANTS))) if t]

    def create(self, slug: str, concurrency: int) -> Tenant:
        tenant = Tenant(slug, concurrency, time.time())
        pipe = self.redis.pipeline()
        pipe.hset(store.tenant_key(slug), mapping={"concurrency": concurrency, "created_at": tenant.created_at})
        pipe.sadd(store.TENANTS, slug)
        # A new tenant joins the fair order at the front: it has been served least.
        pipe.zadd(store.FAIR_ORDER, {slug: 0}, nx=True)
        pipe.execute()
        return tenant

    def update(self, slug: str, concurrency: int) -> None:
        self.redis.hset(store.tenant_key(slug), "concurrency", concurrency)

    def set_realm(self, slug: str, realm: Realm, default_role: str) -> None:
        self.redis.hset(store.tenant_key(slug), mapping={"realm": str(realm), "default_role": default_role})

    def mark_offboarding(self, slug: str) -> None:
        """From the first offboarding step on, the tenant may not start new clusters or jobs."""
        if self.redis.exists(store.tenant_key(slug)):
            self.redis.hset(store.tenant_key(slug), "offboarding", 1)

    def offboarding(self, slug: str) -> bool:
        return self.redis.hget(store.tenant_key(slug), "offboarding") == "1"

    def delete(self, slug: str) -> None:
        """Forget the tenant (offboarding; the caller made sure it has no queued or running jobs)."""
        self.set_oidc(slug, None)
        pipe = self.redis.pipeline()
        pipe.delete(store.tenant_key(slug))
        pipe.srem(store.TENANTS, slug)
        pipe.zrem(store.FAIR_ORDER, slug)
        pipe.execute()
        self._known.pop(slug, None)

    def claim_issuer(self, issuer: str, slug: str) -> bool:
        """Atomically: an issuer belongs to at most one tenant."""
        return bool(self.redis.hsetnx(store.OIDC_ISSUERS, issuer, slug)) or self.issuer_owner(issuer) == slug

    def set_oidc(self, slug: str, oidc: dict | None) -> None:
        previous = self.get(slug)
        pipe = self.redis.pipeline()
        moved = previous and previous.oidc and (oidc is None or previous.oidc["issuer"] != oidc["issuer"])
        if moved and self.issuer_owner(previous.oidc["issuer"]) == slug:
            pipe.hdel(store.OIDC_ISSUERS, previous.oidc["issuer"])
        if oidc is None:
            pipe.hdel(store.tenant_key(slug), "oidc")
        else:
            pipe.hset(store.tenant_key(slug), "oidc", json.dumps(oidc))
            pipe.hset(store.OIDC_ISSUERS, oidc["issuer"], slug)
        pipe.execute()

    def issuer_owner(self, issuer: str) -> str | None:
        return self.redis.hget(store.OIDC_ISSUERS, issuer)
