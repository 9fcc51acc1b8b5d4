"""API tokens: random secrets shown once, stored only as SHA-256 digests.

A token reads `gpc_<id>_<secret>`. The id is public (it names the token in listings, audit records
and revocations); the secret has 256 bits of entropy, so a plain SHA-256 is enough to store it.
"""

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass

from runner_api import store
from runner_api.principal import RANK, Principal, Role

PREFIX = "gpc_"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    role: str
    tenant: str | None
    description: str
    created_at: float
    created_by: str
    user: str | None = None  # the tenant user (email) the token was issued to through an invitation
    projects: list[str] | None = None  # None: every project of the tenant

    def principal(self) -> Principal:
        role = Role(self.role)
        # Tenant admins administer every project, whatever a stale record says.
        projects = None if self.projects is None or RANK[role] >= RANK[Role.TENANT_ADMIN] else tuple(self.projects)
        return Principal(subject=f"token:{self.id}", role=role, tenant=self.tenant, token_id=self.id,
                         projects=projects, user=self.user)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CACHE_SECONDS = 2.0  # a revocation reaches every API process within this


class TokenStore:
    def __init__(self, redis, cache_seconds: float = CACHE_SECONDS):
        self.redis = redis
        self.cache_seconds = cache_seconds
        # digest -> (expires, record): saves a Redis round trip per call on a hot API.
        self._cache: dict[str, tuple[float, TokenRecord]] = {}

    def issue(self, role: Role, tenant: str | None, description: str, created_by: str, user: str | None = None,
              projects: list[str] | None = None) -> tuple[str, TokenRecord]:
        token_id = secrets.token_hex(6)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(token_id, str(role), tenant, description, time.time(), created_by, user, projects)
        key = digest(token)
        pipe = self.redis.pipeline()
        pipe.set(store.token_key(key), json.dumps(asdict(record)))
        pipe.hset(store.TOKENS, token_id, key)
        pipe.execute()
        return token, record

    def lookup(self, token: str) -> TokenRecord | None:
        if not token.startswith(PREFIX):
            return None
        key = digest(token)
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        raw = self.redis.get(store.token_key(key))
        if not raw:
            self._cache.pop(key, None)
            return None
        record = TokenRecord(**json.loads(raw))
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.cache_seconds, record)
        return record

    def get(self, token_id: str) -> TokenRecord | None:
        key = self.redis.hget(store.TOKENS, token_id)
        raw = self.redis.get(store.token_key(key)) if key else None
        return TokenRecord(**json.loads(raw)) if raw else None

    def rebind(self, token_id: str, role: Role, projects: list[str] | None) -> None:
        """A user's role or projects changed: their tokens follow (within the cache time)."""
        key = self.redis.hget(store.TOKENS, token_id)
        raw = self.redis.get(store.token_key(key)) if key else None
        if raw:
            record = json.loads(raw) | {"role": str(role), "projects": projects}
            self.redis.set(store.token_key(key), json.dumps(record), xx=True)
            self._cache.pop(key, None)

    def revoke_all(self, tenant: str, user: str | None = None) -> list[str]:
        """Revoke every token of a tenant, or of one of its users; the ids revoked."""
        ids = [r.id for r in self.list(tenant) if user is None or r.user == user]
        for token_id in ids:
            self.revoke(token_id)
        return ids

    def list(self, tenant: str | None = None) -> list[TokenRecord]:
        keys = list(self.redis.hgetall(store.TOKENS).values())
        raws = self.redis.mget([store.token_key(k) for k in keys]) if keys else []
        records = [TokenRecord(**json.loads(r)) for r in raws if r]
        if tenant is not None:
            records = [r for r in records if r.tenant == tenant]
        return sorted(records, key=lambda r: r.created_at)

    def revoke(self, token_id: str) -> bool:
        key = self.redis.hget(store.TOKENS, token_id)
        if not key:
            return False
        pipe = self.redis.pipeline()
        pipe.delete(store.token_key(key))
        pipe.hdel(store.TOKENS, token_id)
        pipe.execute()
        self._cache.pop(key, None)
        return True
