"""Who is calling: a tenant (or the platform) and a role."""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    TENANT_ADMIN = "tenant-admin"
    TENANT_OPERATOR = "tenant-operator"
    TENANT_VIEWER = "tenant-viewer"


# Higher rank includes every permission of a lower one.
RANK = {Role.TENANT_VIEWER: 1, Role.TENANT_OPERATOR: 2, Role.TENANT_ADMIN: 3, Role.PLATFORM_ADMIN: 4}
TENANT_ROLES = (Role.TENANT_ADMIN, Role.TENANT_OPERATOR, Role.TENANT_VIEWER)


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    tenant: str | None  # None only for platform admins
    via: str = "token"  # "token" or "oidc"
    token_id: str | None = None
    # The tenant projects the caller may use; None means every project (tenant admins always).
    projects: tuple[str, ...] | None = None
    user: str | None = None  # the tenant user (email) a token or JWT belongs to, if any

    @property
    def is_platform(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    def at_least(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]

    def sees_tenant(self, tenant: str | None) -> bool:
        return self.is_platform or (tenant is not None and tenant == self.tenant)

    def may_use_project(self, name: str) -> bool:
        return self.projects is None or self.at_least(Role.TENANT_ADMIN) or name in self.projects

    def as_dict(self) -> dict:
        data = {"subject": self.subject, "role": str(self.role), "tenant": self.tenant, "via": self.via}
        if self.user:
            data["user"] = self.user
        if self.projects is not None:
            data["projects"] = list(self.projects)
        return data
