"""Quotas and usage, per tenant and per project, for GPUs (in total and by model), CPUs, memory and storage.

Limits live on the NetBox tenant (custom fields quota_*, and the `projects` field for projects);
usage is what the tenant's devices add up to. A limit that is not set does not limit.
"""

from dataclasses import dataclass, field

from runner_api.placement import Node

RESOURCES = ("gpus", "cpus", "memory_gb", "storage_tb")
UNITS = {"gpus": "GPUs", "cpus": "CPU cores", "memory_gb": "GB memory", "storage_tb": "TB storage"}


@dataclass
class Usage:
    gpus: int = 0
    cpus: int = 0
    memory_gb: int = 0
    storage_tb: float = 0.0
    gpus_by_model: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, nodes) -> "Usage":
        usage = cls()
        for node in nodes:
            usage.add(node)
        return usage

    def add(self, node: Node) -> None:
        self.gpus += node.gpus
        self.cpus += node.cpus
        self.memory_gb += node.memory_gb
        self.storage_tb = round(self.storage_tb + node.storage_tb, 2)
        if node.gpus:
            self.gpus_by_model[node.model] = self.gpus_by_model.get(node.model, 0) + node.gpus

    def as_dict(self) -> dict:
        return {"gpus": self.gpus, "cpus": self.cpus, "memory_gb": self.memory_gb, "storage_tb": self.storage_tb,
                "gpus_by_model": dict(sorted(self.gpus_by_model.items()))}


@dataclass
class Quota:
    """Limits of one scope: a tenant, or one of its projects. None means unlimited."""

    scope: str  # "tenant acme" or "project acme/research"
    limits: dict[str, float | None]
    gpus_by_model: dict[str, int]

    @classmethod
    def of_tenant(cls, slug: str, custom_fields: dict) -> "Quota":
        cf = custom_fields or {}
        return cls(f"tenant {slug}", {r: cf.get(f"quota_{r}") for r in RESOURCES},
                   dict(cf.get("quota_gpus_by_model") or {}))

    @classmethod
    def of_project(cls, slug: str, project: str, custom_fields: dict) -> "Quota | None":
        entry = ((custom_fields or {}).get("projects") or {}).get(project)
        if entry is None:
            return None
        limits = entry.get("quota") or {}
        return cls(f"project {slug}/{project}", {r: limits.get(r) for r in RESOURCES},
                   dict(limits.get("gpus_by_model") or {}))

    def items(self, usage: Usage):
        """(name, unit, limit, used) for every limit that is set."""
        for resource in RESOURCES:
            if self.limits.get(resource) is not None:
                yield resource, UNITS[resource], float(self.limits[resource]), getattr(usage, resource)
        for model, limit in sorted(self.gpus_by_model.items()):
            yield f"gpus[{model}]", f"{model} GPUs", float(limit), usage.gpus_by_model.get(model, 0)

    def violations(self, used: Usage, asked: Usage) -> list[str]:
        """One sentence per limit the request would break: the quota, the request and what is left."""
        out = []
        for name, unit, limit, in_use in self.items(used):
            wanted = _lookup(asked, name)
            if wanted and in_use + wanted > limit:
                left = max(limit - in_use, 0)
                out.append(f"{self.scope} quota {name}: requested {_num(wanted)} {unit}, "
                           f"{_num(in_use)} of {_num(limit)} in use, {_num(left)} left")
        return out

    def report(self, usage: Usage) -> list[dict]:
        return [{"resource": name, "limit": _num(limit), "used": _num(in_use), "left": _num(max(limit - in_use, 0)),
                 "percent": round(100 * in_use / limit, 1) if limit else (100.0 if in_use else 0.0)}
                for name, _unit, limit, in_use in self.items(usage)]


def _lookup(usage: Usage, name: str) -> float:
    if name.startswith("gpus["):
        return usage.gpus_by_model.get(name[5:-1], 0)
    return getattr(usage, name)


def _num(value: float):
    return int(value) if float(value).is_integer() else round(value, 2)


class QuotaExceeded(Exception):
    def __init__(self, violations: list[str]):
        super().__init__("; ".join(violations))
        self.violations = violations
