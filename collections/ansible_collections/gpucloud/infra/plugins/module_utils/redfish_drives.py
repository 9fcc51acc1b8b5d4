# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A system's drives as its BMC lists them (Systems/<id>/Storage/<controller>/Drives), and Drive.SecureErase.

Read, compare, act: discovery never fails on a BMC without storage (many expose none over Redfish, the lab's
emulator among them); it says why there is nothing to erase instead. Whether a drive can be erased is decided from
the Drive resource alone (the #Drive.SecureErase action it advertises), so the request is built without I/O and a
unit test can hold it to the Redfish schema.
"""

from __future__ import annotations

import time

from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish, RedfishError

ACTION = "#Drive.SecureErase"
# Fastest first: a self-encrypting drive forgets its key in seconds; an overwrite takes hours.
SANITIZATION_PREFERENCE = ("CryptographicErase", "BlockErase", "Overwrite")
TASK_DONE = ("Completed",)
TASK_FAILED = ("Exception", "Killed", "Cancelled", "Interrupted")


def erase_request(drive: dict) -> tuple[str, dict] | None:
    """(target URI, body) of the drive's SecureErase, or None when the BMC offers no such action for it.

    Drive v1.15 added SanitizationType; a BMC that lists allowed values gets the fastest one it allows, one that
    lists none gets an empty body (the drive's default method, the only form older BMCs accept)."""
    action = (drive.get("Actions") or {}).get(ACTION)
    if not isinstance(action, dict):
        return None
    target = action.get("target") or f"{drive['@odata.id']}/Actions/Drive.SecureErase"
    allowed = action.get("SanitizationType@Redfish.AllowableValues") or []
    chosen = next((kind for kind in SANITIZATION_PREFERENCE if kind in allowed), allowed[0] if allowed else None)
    return target, ({"SanitizationType": chosen} if chosen else {})


def summary(drive: dict) -> dict:
    """What a report (and the journal) says of a drive."""
    request = erase_request(drive)
    return {"uri": drive.get("@odata.id"), "name": drive.get("Name") or drive.get("Id"),
            "model": drive.get("Model"), "serial": drive.get("SerialNumber"),
            "capacity_bytes": drive.get("CapacityBytes"), "protocol": drive.get("Protocol"),
            "erasable": request is not None,
            "sanitization": (request[1].get("SanitizationType") or "default") if request else None}


def discover(client: Redfish) -> tuple[list[dict], str | None]:
    """Every Drive resource under the system's Storage, and why there are none when there are none."""
    system = client.system()
    link = (system.get("Storage") or {}).get("@odata.id")
    if not link:
        return [], "the BMC lists no Storage resource for the system"
    try:
        controllers = client.get(link).get("Members") or []
    except RedfishError as exc:
        # sushy-tools advertises Storage but answers 500 unless storage is configured: no drives to erase.
        return [], f"the BMC's Storage collection cannot be read ({exc.status or 'no answer'}: {_why(exc)})"
    links: list[str] = []
    for member in controllers:
        storage = client.get(member["@odata.id"])
        links += [d["@odata.id"] for d in storage.get("Drives") or [] if d.get("@odata.id") not in links]
    if not links:
        return [], "the BMC lists no drive under the system's Storage"
    return [client.get(link) for link in links], None


def wait_task(client: Redfish, monitor: str, timeout: float, poll: float = 5.0) -> str | None:
    """Follow a task monitor until the task ends; the reason it failed, or None when it completed.

    A task monitor answers 202 while the task runs; afterwards the Task resource (or an empty 200/204)."""
    deadline = time.monotonic() + timeout
    while True:
        response, body = client.request("GET", monitor)
        state = body.get("TaskState")
        if response.status_code != 202 and (state is None or state in TASK_DONE):
            return None
        if state in TASK_FAILED:
            detail = "; ".join(m.get("Message", "") for m in body.get("Messages") or [] if isinstance(m, dict))
            return f"the erase task ended {state}" + (f": {detail}" if detail else "")
        if time.monotonic() > deadline:
            return f"the erase task was still {state or 'running'} after {timeout:.0f} s"
        time.sleep(poll)


def erase(client: Redfish, drive: dict, timeout: float, poll: float = 5.0) -> str | None:
    """SecureErase one drive and wait for it; the reason it failed, or None."""
    request = erase_request(drive)
    if request is None:
        return "the BMC offers no Drive.SecureErase for it"
    target, body = request
    try:
        response, _ = client.post(target, body)
        monitor = response.headers.get("Location") if response.status_code == 202 else None
        return wait_task(client, monitor, timeout, poll) if monitor else None
    except RedfishError as exc:
        return f"SecureErase failed ({exc.status or 'no answer'}: {_why(exc)})"


def secure_erase(client: Redfish, check_mode: bool, timeout: float, poll: float = 5.0) -> dict:
    """Erase every erasable drive; report each drive, those erased and those that could not be."""
    drives, none_why = discover(client)
    erased, unerasable = [], []
    for drive in drives:
        entry = summary(drive)
        reason = ("the BMC offers no Drive.SecureErase for it" if not entry["erasable"]
                  else None if check_mode else erase(client, drive, timeout, poll))
        if reason:
            unerasable.append({**entry, "reason": reason})
        else:
            erased.append(entry)
    return {"changed": bool(erased), "drives": [summary(d) for d in drives], "erased": erased,
            "unerasable": unerasable, "no_drives_reason": none_why}


def listing(client: Redfish) -> dict:
    drives, none_why = discover(client)
    entries = [summary(d) for d in drives]
    return {"changed": False, "drives": entries, "erased": [],
            "unerasable": [{**e, "reason": "the BMC offers no Drive.SecureErase for it"}
                           for e in entries if not e["erasable"]], "no_drives_reason": none_why}


def _why(exc: RedfishError) -> str:
    return (exc.body.get("error") or {}).get("message") or str(exc)
