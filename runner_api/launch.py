"""Checks a launch request against the catalogue and the tenant's inventory, reporting every error.

Tenant input never reaches Jinja: any string (value or key, at any depth) holding a Jinja
delimiter is refused here, and what passes is still written as `!unsafe` for Ansible (see
execution.write_extravars), so a delimiter that slipped through would be printed, not run.
"""

import re
from dataclasses import dataclass

from runner_api.catalogue import Entry

JINJA_MARKERS = ("{{", "{%", "{#", "}}", "%}", "#}")
# Ansible keywords and magic variables that change how or as whom Ansible connects, or what it sees.
CONNECTION_OR_PRIVILEGE = {
    "become", "become_user", "become_method", "become_flags", "become_exe", "become_pass", "become_password",
    "connection", "remote_user", "port", "environment", "delegate_to", "check_mode", "diff",
    "hostvars", "groups", "group_names", "inventory_hostname", "inventory_dir", "inventory_file",
    "omit", "playbook_dir", "role_path", "vars", "play_hosts", "ansible_play_hosts",
}
HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
REQUEST_SCHEMA = {
    "type": "object",
    "required": ["playbook"],
    "additionalProperties": False,
    "properties": {
        "playbook": {"type": "string", "minLength": 1, "maxLength": 100},
        "variables": {"type": "object"},
        "limit": {"type": "array", "items": {"type": "string", "maxLength": 253}, "maxItems": 10000},
        "timeout": {"type": "integer", "minimum": 1, "maximum": 7 * 24 * 3600},
        "tenant": {"type": "string", "maxLength": 50},
    },
}


@dataclass(frozen=True)
class Launch:
    entry: Entry
    variables: dict
    limit: list[str]
    nodes: list[str]
    timeout: int


def jinja_errors(value, path: str) -> list[dict]:
    errors = []
    if isinstance(value, str):
        if any(marker in value for marker in JINJA_MARKERS):
            errors.append({"field": path, "message": "template delimiters ({{ }}, {% %}, {# #}) are not allowed"})
    elif isinstance(value, dict):
        for key, item in value.items():
            errors += jinja_errors(key, f"{path} (key {key!r})") if isinstance(key, str) else []
            errors += jinja_errors(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors += jinja_errors(item, f"{path}[{index}]")
    return errors


def name_errors(variables: dict) -> list[dict]:
    errors = []
    for name in variables:
        field = f"variables.{name}"
        if name.lower().startswith("ansible_"):
            errors.append({"field": field, "message": "ansible_* variables cannot be set by tenants"})
        elif name.lower() in CONNECTION_OR_PRIVILEGE:
            errors.append({"field": field, "message": "connection, privilege and magic variables cannot be set"})
    return errors


def schema_errors(entry: Entry, variables: dict, reported: set[str]) -> list[dict]:
    errors = []
    for error in entry.validator.iter_errors(variables):
        if error.validator == "additionalProperties" and not error.path:
            for name in sorted(set(variables) - set(entry.schema["properties"])):
                if f"variables.{name}" not in reported:
                    allowed = ", ".join(sorted(entry.schema["properties"])) or "none"
                    errors.append({"field": f"variables.{name}",
                                   "message": f"unknown variable for {entry.name}; allowed: {allowed}"})
            continue
        field = "variables" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        if error.validator == "required":
            missing = error.message.split("'")[1]
            field, message = f"variables.{missing}", "required"
        else:
            message = error.message
        errors.append({"field": field, "message": message})
    return errors


def limit_errors(limit: list[str], hosts: set[str]) -> list[dict]:
    errors = []
    for index, name in enumerate(limit):
        field = f"limit[{index}]"
        if not HOST_NAME.match(name):
            errors.append({"field": field, "message": "expected a host name (patterns are not accepted)"})
        elif name not in hosts:
            errors.append({"field": field, "message": f"{name!r} is not a node of this tenant"})
    return errors


def check(entry: Entry, body: dict, hosts: set[str]) -> tuple[Launch | None, list[dict]]:
    """Returns the launch, or every error found in the request."""
    variables = body.get("variables") or {}
    limit = list(dict.fromkeys(body.get("limit") or []))
    errors = jinja_errors(variables, "variables") + jinja_errors(limit, "limit")
    naming = name_errors(variables)
    errors += naming + schema_errors(entry, variables, {e["field"] for e in naming})
    errors += limit_errors(limit, hosts)
    timeout = body.get("timeout", entry.timeout)
    if timeout > entry.max_timeout:
        errors.append({"field": "timeout", "message": f"at most {entry.max_timeout} seconds for {entry.name}"})
    if errors:
        return None, errors
    nodes = sorted(limit or hosts) if entry.touches_nodes else []
    return Launch(entry, variables, limit, nodes, timeout), []
