"""The playbook catalogue: the only playbooks tenants may launch, and the variables each accepts.

An entry names its playbook and the roles whose `meta/argument_specs.yml` (entry point `main`)
declare its variables; those specs become one JSON schema per playbook, served by the API and
used to validate every launch.
"""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from runner_api.principal import Role

ANSIBLE_TYPES = {"str": "string", "path": "string", "int": "integer", "float": "number", "bool": "boolean"}
MAX_STRING = 4096


class CatalogueError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    name: str
    playbook: Path
    description: str
    schema: dict
    min_role: Role = Role.TENANT_OPERATOR
    touches_nodes: bool = True
    # Internal entries are cluster stages: operator-written, launched only by a cluster's pipeline,
    # never by a tenant; they may read NetBox and the credential variables the settings name, and
    # with `fabric` they see the fabric's switches too.
    internal: bool = False
    fabric: bool = False
    timeout: int = 3600
    max_timeout: int = 4 * 3600
    tasks: int | None = None
    validator: Draft202012Validator = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "min_role": str(self.min_role),
            "touches_nodes": self.touches_nodes,
            "timeout": self.timeout,
            "max_timeout": self.max_timeout,
            "tasks": self.tasks,
            "variables": self.schema,
        }


def option_schema(spec: dict) -> dict:
    kind = spec.get("type", "str")
    if kind in ANSIBLE_TYPES:
        schema = {"type": ANSIBLE_TYPES[kind]}
        if schema["type"] == "string":
            schema["maxLength"] = MAX_STRING
    elif kind == "list":
        item = {"type": spec.get("elements", "str"), "options": spec.get("options")} if spec.get("elements") else {}
        schema = {"type": "array", "maxItems": 1000, "items": option_schema(item) if item else {}}
    elif kind == "dict":
        schema = {"type": "object"}
        if spec.get("options"):
            schema |= options_schema(spec["options"])
    else:  # raw: any JSON; the Jinja screen still applies to every string inside
        schema = {}
    if spec.get("choices"):
        # For a list, the choices constrain each element (Ansible's argument spec semantics).
        target = schema["items"] if schema.get("type") == "array" else schema
        target["enum"] = list(spec["choices"])
    description = spec.get("description")
    if description:
        schema["description"] = " ".join(description) if isinstance(description, list) else str(description)
    if "default" in spec and spec["default"] is not None:
        schema["default"] = spec["default"]
    return schema


def options_schema(options: dict) -> dict:
    return {
        "properties": {name: option_schema(spec or {}) for name, spec in options.items()},
        "required": sorted(name for name, spec in options.items() if (spec or {}).get("required")),
        "additionalProperties": False,
    }


def role_options(roles_dir: Path, role: str) -> dict:
    path = roles_dir / role / "meta" / "argument_specs.yml"
    if not path.is_file():
        raise CatalogueError(f"role {role!r} has no {path}")
    specs = yaml.safe_load(path.read_text()) or {}
    return ((specs.get("argument_specs") or {}).get("main") or {}).get("options") or {}


def load(path: Path, repo: Path) -> dict[str, Entry]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    entries = {}
    for name, raw in (data.get("playbooks") or {}).items():
        options = {}
        for role in raw.get("roles", []):
            options |= role_options(repo / "roles", role)
        options |= raw.get("variables") or {}
        playbook = (Path(path).parent / raw["playbook"]).resolve()
        if not playbook.is_file():
            raise CatalogueError(f"catalogue entry {name!r}: playbook {playbook} does not exist")
        schema = {"type": "object"} | options_schema(options)
        entries[name] = Entry(
            name=name,
            playbook=playbook,
            description=raw.get("description", ""),
            schema=schema,
            min_role=Role(raw.get("min_role", Role.TENANT_OPERATOR)),
            touches_nodes=bool(raw.get("touches_nodes", True)),
            internal=bool(raw.get("internal", False)),
            fabric=bool(raw.get("fabric", False)),
            timeout=int(raw.get("timeout", 3600)),
            max_timeout=int(raw.get("max_timeout", 4 * 3600)),
            validator=Draft202012Validator(schema),
        )
    return entries


def with_task_counts(entries: dict[str, Entry], repo: Path, cache_file: Path) -> dict[str, Entry]:
    """Each entry's static task count (`ansible-playbook --list-tasks`), for progress bars.

    Listing costs about a second per playbook, so counts are cached by a digest of the playbook and
    its roles' files; a failure leaves the count unknown rather than failing the catalogue.
    """
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    counted = {}
    for name, entry in entries.items():
        key = _digest(entry, repo)
        if key not in cache:
            cache[key] = _list_tasks(entry, repo)
        counted[name] = replace(entry, tasks=cache[key])
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(cache))
    return counted


def _digest(entry: Entry, repo: Path) -> str:
    digest = hashlib.sha256(entry.playbook.read_bytes())
    for path in sorted((repo / "roles").rglob("*.yml")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _list_tasks(entry: Entry, repo: Path) -> int | None:
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "--list-tasks", "-i", "localhost,",
               str(entry.playbook)]
    env = {**os.environ, "ANSIBLE_CONFIG": str(repo / "ansible.cfg")}
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in out.splitlines() if "\tTAGS:" in line and not line.lstrip().startswith("play #"))
