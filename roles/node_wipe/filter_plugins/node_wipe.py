# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the node_wipe role: one summary of a node's wipe, for the console and the NetBox journal."""

from __future__ import annotations


def _media(release: dict) -> str:
    ejected = release.get("ejected") or []
    if not ejected:
        return "virtual media: none inserted"
    return "virtual media ejected: " + ", ".join(
        f"{e['media'].rstrip('/').rsplit('/', 1)[-1]} ({e['image'] or 'no image'})" for e in ejected)


def _boot(release: dict) -> str:
    if not release.get("boot_changed"):
        return "boot override: none in effect"
    boot = release.get("boot") or {}
    return f"boot override cleared (now {boot.get('target')}, {boot.get('enabled')})"


def _power(graceful: dict, forced: dict) -> str:
    if forced.get("changed"):  # a shutdown that timed out reports no state: the forced power-off's is the same
        before = graceful.get("power_state_before") or forced.get("power_state_before") or "?"
        return f"power: {before} -> Off (ForceOff, no graceful shutdown in time)"
    if graceful.get("changed"):
        return f"power: {graceful.get('power_state_before') or '?'} -> Off (GracefulShutdown)"
    return "power: already off"


def _drives(drives: dict, secure_erase: bool) -> tuple[str, bool]:
    """The drives line, and whether it is a warning (nothing erased, or a drive left as it was)."""
    if not secure_erase:
        return "drives: not erased (node_wipe_secure_erase is off)", False
    if not drives or drives.get("skipped"):
        return "drives: not erased", True
    erased, unerasable = drives.get("erased") or [], drives.get("unerasable") or []
    if not drives.get("drives"):
        return f"drives: no erasable drives ({drives.get('no_drives_reason')})", True
    parts = []
    if erased:
        kinds = sorted({d.get("sanitization") or "default" for d in erased})
        parts.append(f"{len(erased)} erased ({', '.join(kinds)}): " + ", ".join(d["name"] for d in erased))
    if unerasable:
        parts.append(f"{len(unerasable)} not erasable: "
                     + "; ".join(f"{d['name']} ({d['reason']})" for d in unerasable))
    return "drives: " + "; ".join(parts), bool(unerasable) or not erased


def node_wipe_summary(release: dict, graceful: dict, forced: dict, drives: dict, platform, secure_erase: bool,
                      netbox: bool) -> dict:
    """{lines, warning}: what the wipe did on one node, in words (no credentials ever reach these results)."""
    drive_line, warning = _drives(drives or {}, secure_erase)
    lines = [_media(release or {}), _boot(release or {}), _power(graceful or {}, forced or {}), drive_line]
    if netbox:
        lines.append(f"image assignment cleared: {platform}" if platform else "image assignment: none")
    return {"lines": lines, "warning": warning}


def node_wipe_journal_entry(summary: dict, device_id, bmc_address: str, secure_erase: bool) -> dict:
    """The NetBox journal entry of a wiped node."""
    kind = "warning" if summary["warning"] else ("success" if secure_erase else "info")
    comments = "\n".join([f"Wiped by gpucloud for the free pool (role node_wipe, BMC {bmc_address}):",
                          *(f"- {line}" for line in summary["lines"])])
    return {"device_id": int(device_id), "kind": kind, "comments": comments}


class FilterModule:
    def filters(self):
        return {"node_wipe_summary": node_wipe_summary, "node_wipe_journal_entry": node_wipe_journal_entry}
