# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the bios_tuning role's audit entry point: per-node drift and the fleet report."""

from __future__ import annotations


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "(unset)" if value is None else str(value)


def bios_tuning_drift(result: dict) -> dict:
    """{attribute: {current, desired, pending}} from a check-mode bios_settings result run with diff."""
    diff = (result or {}).get("diff") or {}
    before, after = diff.get("before") or {}, diff.get("after") or {}
    pending = (result or {}).get("pending_attributes") or {}
    return {name: {"current": before.get(name), "desired": desired, "pending": name in pending}
            for name, desired in sorted(after.items())}


def bios_tuning_audit_report(drift_by_node: dict, failed=None, profile=None, unsupported=None) -> dict:
    """The fleet report: per attribute, how many nodes differ and which (current vs desired)."""
    attributes: dict = {}
    for node, drift in sorted((drift_by_node or {}).items()):
        for name, values in sorted((drift or {}).items()):
            entry = attributes.setdefault(name, {"drifted": 0, "nodes": {}})
            entry["drifted"] += 1
            entry["nodes"][node] = dict(values)
    drifted = sorted(node for node, drift in (drift_by_node or {}).items() if drift)
    return {
        "profile": profile or None,
        "audited": len(drift_by_node or {}),
        "in_line": len(drift_by_node or {}) - len(drifted),
        "drifted_nodes": drifted,
        "failed_nodes": sorted(failed or []),
        "unsupported_intents": sorted(set(unsupported or [])),
        "attributes": dict(sorted(attributes.items())),
    }


def bios_tuning_audit_table(report: dict) -> list[str]:
    """Short lines for the console: one per drifted attribute."""
    lines = [f"{report['audited']} node(s) audited, {len(report['drifted_nodes'])} drifted, "
             f"{len(report['failed_nodes'])} unreachable or failed"]
    for name, entry in report["attributes"].items():
        nodes = entry["nodes"]
        sample = ", ".join(f"{n} ({_fmt(v['current'])} != {_fmt(v['desired'])})" for n, v in list(nodes.items())[:5])
        more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
        lines.append(f"{name}: {entry['drifted']} node(s) differ: {sample}{more}")
    if report["failed_nodes"]:
        lines.append("not audited: " + ", ".join(report["failed_nodes"]))
    return lines


def bios_tuning_audit_entries(report: dict, netbox_ids: dict) -> list[dict]:
    """One warning journal entry per drifted node that has a NetBox id, listing its drifted attributes."""
    entries = []
    profile = f" {report['profile']}" if report.get("profile") else ""
    for node in report["drifted_nodes"]:
        if not netbox_ids.get(node):
            continue
        lines = [f"BIOS drift found by the gpucloud BIOS audit (profile{profile}; nothing was changed):"]
        for name, entry in report["attributes"].items():
            if node in entry["nodes"]:
                values = entry["nodes"][node]
                pending = " (desired value pending until reset)" if values.get("pending") else ""
                lines.append(f"- `{name}`: {_fmt(values['current'])} (desired {_fmt(values['desired'])}){pending}")
        entries.append({"device_id": int(netbox_ids[node]), "kind": "warning", "comments": "\n".join(lines)})
    return entries


class FilterModule:
    def filters(self):
        return {"bios_tuning_drift": bios_tuning_drift, "bios_tuning_audit_report": bios_tuning_audit_report,
                "bios_tuning_audit_table": bios_tuning_audit_table,
                "bios_tuning_audit_entries": bios_tuning_audit_entries}
