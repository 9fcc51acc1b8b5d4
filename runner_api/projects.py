"""A tenant's projects and their quotas, kept where the quotas are enforced: the NetBox tenant's `projects` field.

{"<project>": {"description": str, "quota": {"gpus": 16, "gpus_by_model": {model: n}, "cpus": .., "memory_gb": ..,
"storage_tb": ..}}}; every quota key is optional (absent: only the tenant's quota applies). A project's quota may
not exceed the tenant's; projects together may (they share the tenant's quota, which still holds).

NetBox has no compare-and-set on a custom field, so writers of one tenant's projects take a Redis lock around
their read-modify-write.
"""

import re

from runner_api import store
from runner_api.errors import Conflict, NotFound, ValidationFailed

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
TENANTS = "tenancy/tenants"
RESOURCES = ("gpus", "cpus", "memory_gb", "storage_tb")
QUOTA = {"type": "object", "additionalProperties": False, "properties": {
    "gpus": {"type": "integer", "minimum": 0},
    "gpus_by_model": {"type": "object", "maxProperties": 50, "propertyNames": {"maxLength": 100},
                      "additionalProperties": {"type": "integer", "minimum": 0}},
    "cpus": {"type": "integer", "minimum": 0},
    "memory_gb": {"type": "integer", "minimum": 0},
    "storage_tb": {"type": "number", "minimum": 0}}}
PROJECT = {"type": "object", "additionalProperties": False, "properties": {
    "description": {"type": "string", "maxLength": 200},
    "quota": QUOTA}}
LOCK_SECONDS = 30


def tenant_quota(tenant: dict) -> dict:
    """The NetBox tenant's limits that are set, under the project quota's keys."""
    cf = tenant.get("custom_fields") or {}
    limits = {r: float(cf[f"quota_{r}"]) for r in RESOURCES if cf.get(f"quota_{r}") is not None}
    if cf.get("quota_gpus_by_model"):
        limits["gpus_by_model"] = dict(cf["quota_gpus_by_model"])
    return limits


def excess(name: str, quota: dict, limits: dict, field: str) -> list[dict]:
    """Every resource of the project's quota above the tenant's, each naming the project and the resource."""
    errors = []
    for resource in RESOURCES:
        if quota.get(resource) is not None and resource in limits and float(quota[resource]) > limits[resource]:
            errors.append({"field": f"{field}.quota.{resource}",
                           "message": f"project {name}: {resource} {quota[resource]} exceeds the tenant's quota "
                                      f"of {_number(limits[resource])}"})
    for model, count in sorted((quota.get("gpus_by_model") or {}).items()):
        cap = (limits.get("gpus_by_model") or {}).get(model, limits.get("gpus"))
        if cap is not None and count > cap:
            errors.append({"field": f"{field}.quota.gpus_by_model.{model}",
                           "message": f"project {name}: {count} {model} GPUs exceed the tenant's quota of "
                                      f"{_number(cap)}"})
    return errors


def _number(value):
    return int(value) if float(value).is_integer() else value


def normalised(spec: dict) -> dict:
    """A project as stored: a description and a quota, both always present."""
    return {"description": spec.get("description", ""), "quota": dict(spec.get("quota") or {})}


class Projects:
    """Reads and writes one NetBox tenant's projects."""

    def __init__(self, nb, redis):
        self.nb = nb
        self.redis = redis

    def tenant(self, slug: str) -> dict:
        found = self.nb.list(TENANTS, slug=slug)
        if not found:
            raise NotFound(f"no NetBox tenant {slug}")
        return found[0]

    def read(self, slug: str) -> tuple[dict, dict]:
        tenant = self.tenant(slug)
        return tenant, dict((tenant.get("custom_fields") or {}).get("projects") or {})

    def _write(self, tenant: dict, projects: dict) -> None:
        self.nb.update(TENANTS, [{"id": tenant["id"], "custom_fields": {"projects": projects or None}}])

    def lock(self, slug: str):
        return self.redis.lock(store.tenant_lock(slug, "projects"), timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)

    def ensure(self, slug: str, wanted: dict) -> bool:
        """Onboarding: the projects named hold exactly the spec given; others are kept. Whether anything changed."""
        with self.lock(slug):
            tenant, projects = self.read(slug)
            errors = [e for name, spec in sorted(wanted.items())
                      for e in excess(name, spec.get("quota") or {}, tenant_quota(tenant), f"projects.{name}")]
            if errors:
                raise ValidationFailed(errors)
            merged = projects | {name: normalised(spec) for name, spec in wanted.items()}
            if merged == projects:
                return False
            self._write(tenant, merged)
            return True

    def put(self, slug: str, name: str, spec: dict, create: bool) -> dict:
        """Create (create=True, 409 if it exists) or change (404 if it does not) one project."""
        with self.lock(slug):
            tenant, projects = self.read(slug)
            if create and name in projects:
                raise Conflict(f"project {name} exists")
            if not create and name not in projects:
                raise NotFound(f"no project {name}")
            merged = normalised(projects.get(name, {}) | spec)
            errors = excess(name, merged["quota"], tenant_quota(tenant), "body")
            if errors:
                raise ValidationFailed(errors)
            self._write(tenant, projects | {name: merged})
            return merged

    def delete(self, slug: str, name: str) -> None:
        """Refused while a node of the tenant is booked to the project."""
        with self.lock(slug):
            tenant, projects = self.read(slug)
            if name not in projects:
                raise NotFound(f"no project {name}")
            nodes = self.nb.get("dcim/devices", tenant_id=tenant["id"], cf_project=name, limit=1)["count"]
            if nodes:
                raise Conflict(f"project {name} still holds {nodes} node(s); release them first")
            del projects[name]
            self._write(tenant, projects)

    def clear(self, slug: str) -> bool:
        """Offboarding: no projects left. Whether there were any."""
        with self.lock(slug):
            found = self.nb.list(TENANTS, slug=slug)
            if not found or not (found[0].get("custom_fields") or {}).get("projects"):
                return False
            self._write(found[0], {})
            return True
