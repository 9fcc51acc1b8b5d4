"""A cluster's stages: which internal playbook runs when, and the stage job that runs it.

The stage list comes from the settings' cluster-stage file (playbooks/clusters.yml). Variables
there name the cluster's facts as whole values ($tenant, $site, ...); they are filled in here, in
Python, and the job writes them as `!unsafe` like every job's variables, so nothing a tenant typed
(a cluster name, a project) is ever templated.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from runner_api import launch, store
from runner_api.jobs import JobStatus, new_id

FACTS = ("tenant", "project", "cluster", "kind", "scheduler", "site", "image", "pool", "vlans", "prefix_length")
# Slurm's ClusterName takes 40 characters (a DNS label, Kubernetes', 63).
SCHEDULER_NAME_MAX = 40
SCHEDULED_KINDS = ("slurm", "k8s")


class StageConfigError(Exception):
    pass


@dataclass(frozen=True)
class Stage:
    name: str
    playbook: str
    variables: dict
    only_if: str | None = None  # a fact the cluster must have for the stage to run, e.g. image

    def wanted(self, cluster: dict) -> bool:
        return not self.only_if or facts_of(cluster).get(self.only_if) not in (None, "")


def load(path: Path, catalogue: dict) -> dict[str, list[Stage]]:
    """kind -> stages, plus 'delete'; every playbook must be an internal catalogue entry."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    plans = {kind: _stages(kind, raw, catalogue) for kind, raw in (data.get("kinds") or {}).items()}
    plans["delete"] = _stages("delete", data.get("delete") or [], catalogue)
    return plans


def _stages(kind: str, raw: list, catalogue: dict) -> list[Stage]:
    stages = []
    for index, item in enumerate(raw):
        entry = catalogue.get(item.get("playbook"))
        if entry is None or not entry.internal:
            raise StageConfigError(f"{kind}[{index}].playbook: {item.get('playbook')!r} is not an internal "
                                   "catalogue entry")
        only_if = item.get("only_if")
        if only_if is not None and only_if not in FACTS:
            raise StageConfigError(f"{kind}[{index}].only_if: expected one of {', '.join(FACTS)}, got {only_if!r}")
        stages.append(Stage(str(item["stage"]), entry.name, dict(item.get("variables") or {}), only_if))
    return stages


def fill(variables: dict, facts: dict) -> dict:
    """$name as a whole value becomes the fact; facts that are unset drop the variable (role default)."""
    out = {}
    for key, value in variables.items():
        if isinstance(value, str) and value.startswith("$") and value[1:] in FACTS:
            if facts.get(value[1:]) not in (None, ""):
                out[key] = facts[value[1:]]
        else:
            out[key] = value
    return out


def scheduler_name(tenant: str, name: str) -> str:
    """The name the cluster's scheduler knows itself by: acme-train-5d41a2. The hash of tenant/name makes it unique
    across tenants whatever their names (acme + x-y and acme-x + y read alike), and the rest is cut to fit."""
    digest = hashlib.sha256(f"{tenant}/{name}".encode()).hexdigest()[:6]
    readable = f"{tenant}-{name}".replace("_", "-").lower()[:SCHEDULER_NAME_MAX - 7].rstrip("-")
    return f"{readable}-{digest}"


def facts_of(cluster: dict) -> dict:
    networks = cluster.get("networks") or {}
    return {"tenant": cluster["tenant"], "project": cluster.get("project"), "cluster": cluster["name"],
            "kind": cluster.get("kind"),
            # only clusters gpucloud built have a scheduler (nodes adopted at offboarding have none to take down)
            "scheduler": (scheduler_name(cluster["tenant"], cluster["name"])
                          if cluster.get("kind") in SCHEDULED_KINDS else None),
            "site": cluster.get("site"), "image": (cluster.get("request") or {}).get("image"),
            "pool": networks.get("pool"), "vlans": networks.get("vlans"),
            "prefix_length": networks.get("prefix_length")}


def onboarded_networks(redis, tenant: str) -> dict:
    """The networks the tenant was onboarded with (pool, VLANs, prefix length), so a cluster's network
    stage keeps that allocation instead of asking for the role's defaults."""
    raw = redis.get(store.onboarding_key(tenant))
    networks = ((json.loads(raw) if raw else {}).get("request") or {}).get("networks") or {}
    return {k: networks[k] for k in ("pool", "vlans", "prefix_length") if k in networks}


def job_for(cluster: dict, stage: Stage, entry, correlation_id: str) -> dict:
    """The stage's job record (queued by submission.enqueue); the catalogue entry's schema still applies."""
    variables = fill(stage.variables, facts_of(cluster))
    errors = launch.schema_errors(entry, variables, set()) + launch.jinja_errors(variables, "variables")
    if errors:
        raise StageConfigError(f"stage {stage.name}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors))
    nodes = sorted(cluster["node_ids"]) if entry.touches_nodes else []
    return {
        "id": new_id(), "tenant": cluster["tenant"], "playbook": entry.name, "status": JobStatus.QUEUED,
        "variables": variables, "limit": nodes, "nodes": nodes,
        "node_ids": {n: cluster["node_ids"][n] for n in nodes}, "timeout": entry.timeout,
        "created_at": time.time(), "correlation_id": correlation_id,
        "submitted_by": {"subject": f"cluster:{cluster['id']}", "role": "system", "tenant": cluster["tenant"],
                         "via": "pipeline"},
        "cluster": cluster["id"], "stage": stage.name, "project": cluster.get("project"),
    }
