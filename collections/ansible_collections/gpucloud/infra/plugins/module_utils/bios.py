# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""BIOS intent: validation against the AttributeRegistry, and the plan (what differs, what is pending).

Pure functions over Redfish payloads, so recorded vendor payloads test every branch. BMCs report
values with different types (the sushy emulator stores everything as strings: 12 -> "12",
true -> "True"), so values are compared by meaning, and sent with the registry's type.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

TRUE, FALSE = {"true", "enabled", "1", "yes", "on"}, {"false", "disabled", "0", "no", "off"}


def registry_entries(registry: dict | None) -> dict[str, dict]:
    if not registry:
        return {}
    entries = (registry.get("RegistryEntries") or {}).get("Attributes") or []
    return {e["AttributeName"]: e for e in entries if e.get("AttributeName")}


def same(current, desired) -> bool:
    """Equal by meaning: "True" == true, "12" == 12, but "Enabled" != "Disabled"."""
    if current is None:
        return desired is None
    if isinstance(desired, bool) or isinstance(current, bool):
        return _as_bool(current) is not None and _as_bool(current) == _as_bool(desired)
    if isinstance(desired, int) or isinstance(current, int):
        try:
            return int(str(current)) == int(str(desired))
        except ValueError:
            return False
    return str(current) == str(desired)


def _as_bool(value):
    text = str(value).strip().lower()
    return True if text in TRUE else False if text in FALSE else None


def typed(value, entry: dict | None):
    """The value as the registry says the BMC wants it in a PATCH."""
    kind = (entry or {}).get("Type")
    if kind == "Integer":
        return int(str(value))
    if kind == "Boolean":
        return bool(_as_bool(value))
    return value if entry is None else str(value)


def validate(desired: dict, registry: dict | None) -> list[dict]:
    """Every bad attribute at once: unknown names, read-only ones, wrong types, values not allowed."""
    entries = registry_entries(registry)
    errors = []
    for name, value in sorted(desired.items()):
        if isinstance(value, dict | list):
            errors.append(_error(name, value, "expected a single value, not a list or mapping", None))
            continue
        if not entries:
            continue  # no registry on this BMC: names and values cannot be checked here
        entry = entries.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, entries, n=5, cutoff=0.5)
            errors.append(_error(name, value, "unknown attribute", close or sorted(entries)[:20]))
        elif entry.get("ReadOnly") or entry.get("Immutable"):
            errors.append(_error(name, value, "read-only attribute", None))
        else:
            problem, allowed = _value_problem(value, entry)
            if problem:
                errors.append(_error(name, value, problem, allowed))
    return errors


def _value_problem(value, entry: dict) -> tuple[str | None, list | None]:
    kind = entry.get("Type")
    if kind == "Enumeration":
        allowed = [v.get("ValueName") for v in entry.get("Value") or []]
        return (None, None) if str(value) in allowed else ("value not allowed", allowed)
    if kind == "Integer":
        try:
            number = int(str(value))
        except ValueError:
            return "expected an integer", _bounds(entry)
        low, high = entry.get("LowerBound"), entry.get("UpperBound")
        if (low is not None and number < low) or (high is not None and number > high):
            return "out of range", _bounds(entry)
        return None, None
    if kind == "Boolean":
        return (None, None) if _as_bool(value) is not None else ("expected a boolean", [True, False])
    if kind == "Password":
        return "password attributes are not managed by intent", None
    if kind == "String":
        pattern, longest = entry.get("ValueExpression"), entry.get("MaxLength")
        if longest is not None and len(str(value)) > longest:
            return f"longer than {longest} characters", None
        if pattern and not re.fullmatch(pattern, str(value)):
            return f"does not match {pattern}", None
    return None, None


def _bounds(entry: dict) -> list:
    return [f"{entry.get('LowerBound', '-inf')}..{entry.get('UpperBound', 'inf')}"]


def _error(name, value, reason, allowed) -> dict:
    error = {"attribute": name, "value": value, "reason": reason}
    if allowed is not None:
        error["allowed"] = allowed
    return error


def describe(errors: list[dict]) -> str:
    parts = []
    for e in errors:
        allowed = f" (allowed: {', '.join(map(str, e['allowed']))})" if e.get("allowed") else ""
        parts.append(f"{e['attribute']}={e['value']!r}: {e['reason']}{allowed}")
    return "; ".join(parts)


@dataclass
class Plan:
    """What a desired attribute set means against a BMC's current and pending values."""

    changes: dict = field(default_factory=dict)   # name -> desired, still to be sent
    pending: dict = field(default_factory=dict)   # name -> desired, already pending (applies at reset)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def plan(desired: dict, current: dict, pending: dict) -> Plan:
    result = Plan()
    for name, value in sorted(desired.items()):
        if same(current.get(name), value):
            continue
        result.before[name] = current.get(name)
        result.after[name] = value
        if name in pending and same(pending[name], value) and not same(pending[name], current.get(name)):
            result.pending[name] = value
        else:
            result.changes[name] = value
    return result


def pending_values(current: dict, settings: dict | None) -> dict:
    """Attributes whose pending value differs from the current one (a settings object may echo all)."""
    staged = (settings or {}).get("Attributes") or {}
    return {k: v for k, v in staged.items() if not same(current.get(k), v)}
