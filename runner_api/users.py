"""Tenant users: an email, a tenant role and the projects they may use, invited with a one-time code.

An invitation code reads `gpi_<secret>` (256 bits of entropy). Only its SHA-256 digest is stored, under a
key that expires with the invitation; accepting deletes that key in the same Redis command (GETDEL), so a
code works once even when two clients race with it. The token an accepted invitation yields is bound to
the user: changing the user's role or projects rebinds it, removing the user revokes it.
"""

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from types import EllipsisType

from runner_api import store
from runner_api.errors import Conflict, NotFound, ValidationFailed
from runner_api.principal import RANK, Role
from runner_api.tokens import TokenRecord, TokenStore, digest

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,188}[A-Za-z0-9])?$")
CODE_PREFIX = "gpi_"
INVITATION_SECONDS = 7 * 24 * 3600


class UserStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"


class InvitationInvalid(Exception):
    """Unknown, used or expired: one answer for all three, so a code's history is not revealed."""


@dataclass
class User:
    email: str
    role: str
    projects: list[str] | None  # None: every project of the tenant
    status: str
    created_at: float
    created_by: str
    invitation: str | None = None  # digest of the open invitation's code
    expires_at: float | None = None
    accepted_at: float | None = None

    def as_dict(self) -> dict:
        data = asdict(self)
        del data["invitation"]
        return data


def normalise(email: str) -> str:
    return email.strip().lower()


def scoped(role: Role | str, projects: list[str] | None) -> list[str] | None:
    """Tenant admins administer every project; everyone else gets the projects named (None: all)."""
    if RANK[Role(role)] >= RANK[Role.TENANT_ADMIN] or projects is None:
        return None
    return sorted(set(projects))


def of(rt) -> "UserStore":
    """The users of the runtime's Redis, with its token store (and that store's cache)."""
    return UserStore(rt.store.redis, rt.tokens)


class UserStore:
    def __init__(self, redis, tokens: TokenStore):
        self.redis = redis
        self.tokens = tokens

    def get(self, tenant: str, email: str) -> User | None:
        raw = self.redis.hget(store.users_key(tenant), normalise(email))
        return User(**json.loads(raw)) if raw else None


    def _save(self, tenant: str, user: User, pipe=None) -> None:
        (pipe or self.redis).hset(store.users_key(tenant), user.email, json.dumps(asdict(user)))

    def invite(self, tenant: str, email: str, role: Role, projects: list[str] | None,
               by: str) -> tuple[str, User]:
        """A new user (or a new code for one who has not accepted yet); the code is returned only here."""
        email = normalise(email)
        if not EMAIL.match(email):
            raise ValidationFailed([{"field": "email", "message": f"{email!r} is not an email address"}])
        user = self.get(tenant, email)
        if user and user.status == UserStatus.ACTIVE:
            raise Conflict(f"user {email} has already accepted an invitation to tenant {tenant}")
        code = f"{CODE_PREFIX}{secrets.token_urlsafe(32)}"
        now = time.time()
        new = User(email, str(role), scoped(role, projects), UserStatus.INVITED, user.created_at if user else now,
                   by, digest(code), now + INVITATION_SECONDS)
        pipe = self.redis.pipeline()
        if user and user.invitation:
            pipe.delete(store.invitation_key(user.invitation))  # a new code replaces the old one
        pipe.set(store.invitation_key(new.invitation), json.dumps({"tenant": tenant, "email": email}),
                 ex=INVITATION_SECONDS)
        self._save(tenant, new, pipe)
        pipe.execute()
        return code, new

    def change(self, tenant: str, email: str, role: Role | None = None,
               projects: list[str] | EllipsisType | None = ...) -> User:
        """A new role and/or projects (... leaves them); the user's tokens follow."""
        user = self.get(tenant, email)
        if user is None:
            raise NotFound(f"no user {normalise(email)} in tenant {tenant}")
        user.role = str(role or user.role)
        user.projects = scoped(user.role, user.projects if projects is ... else projects)
        self._save(tenant, user)
        for record in self.tokens.list(tenant):
            if record.user == user.email:
                self.tokens.rebind(record.id, Role(user.role), user.projects)
        return user

    def ensure(self, tenant: str, email: str, role: Role, projects: list[str] | None,
               by: str) -> tuple[bool, str | None]:
        """Onboarding's idempotent form: (changed, the code when a new invitation was made)."""
        user = self.get(tenant, email)
        if user is None:
            code, _ = self.invite(tenant, email, role, projects, by)
            return True, code
        if user.role == str(role) and user.projects == scoped(role, projects):
            return False, None
        self.change(tenant, email, role, projects)
        return True, None

    def remove(self, tenant: str, email: str) -> bool:
        """The user, their open invitation and every token they hold."""
        user = self.get(tenant, email)
        if user is None:
            return False
        pipe = self.redis.pipeline()
        if user.invitation:
            pipe.delete(store.invitation_key(user.invitation))
        pipe.hdel(store.users_key(tenant), user.email)
        pipe.execute()
        self.tokens.revoke_all(tenant, user.email)
        return True

    def remove_all(self, tenant: str) -> int:
        users = self.list(tenant)
        for user in users:
            self.remove(tenant, user.email)
        self.redis.delete(store.users_key(tenant))
        return len(users)

    def drop_project(self, tenant: str, project: str) -> None:
        """A deleted project leaves every user's list (and their tokens)."""
        for user in self.list(tenant):
            if user.projects and project in user.projects:
                self.change(tenant, user.email, projects=[p for p in user.projects if p != project])

    def accept(self, code: str, tenant_exists) -> tuple[str, TokenRecord, User]:
        """The invitation's code for a token bound to its user; the code is spent whether or not this succeeds."""
        if not code.startswith(CODE_PREFIX):
            raise InvitationInvalid()
        key = digest(code)
        raw = self.redis.getdel(store.invitation_key(key))
        if not raw:
            raise InvitationInvalid()
        ref = json.loads(raw)
        user = self.get(ref["tenant"], ref["email"])
        if user is None or user.invitation != key or (user.expires_at or 0) < time.time() \
                or not tenant_exists(ref["tenant"]):
            raise InvitationInvalid()
        token, record = self.tokens.issue(Role(user.role), ref["tenant"], f"{user.email} (invitation)",
                                          f"invitation:{user.email}", user=user.email, projects=user.projects)
        user.status, user.invitation, user.expires_at, user.accepted_at = UserStatus.ACTIVE, None, None, time.time()
        self._save(ref["tenant"], user)
        return token, record, user

    # Last: below it, `list` in an annotation would name this method.
    def list(self, tenant: str) -> list[User]:
        users = [User(**json.loads(raw)) for raw in self.redis.hvals(store.users_key(tenant))]
        return sorted(users, key=lambda u: u.email)
