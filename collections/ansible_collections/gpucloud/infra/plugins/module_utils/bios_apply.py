# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Read, compare, act for one BMC's BIOS: the I/O around bios.plan, shared by the action plugin,
the audit and the benchmarks.

  read     system, Bios (current), its SettingsObject (pending), the AttributeRegistry if any;
  compare  validate every desired attribute (all errors at once), plan changes vs pending;
  act      PATCH the SettingsObject with the apply time; on Dell make sure a config job exists
           (and say so when one is already queued); reboot only when required and verify.
"""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils import bios, bios_profiles, registry_cache
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish, RedfishError, message_ids

APPLY_TIMES = ("Immediate", "OnReset", "AtMaintenanceWindowStart", "InMaintenanceWindowOnReset")
DELL_JOBS = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs"
OPEN_JOB_STATES = {"Scheduled", "New", "Running", "Waiting", "Starting", "Scheduling", "ReadyForExecution"}


class BiosError(Exception):
    """A request that cannot be carried out; `details` travels back in the task result."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


def desired_attributes(request: dict, system: dict) -> tuple[str, dict, list[str]]:
    vendor = request.get("vendor") or "auto"
    if vendor == "auto":
        vendor = bios_profiles.detect_vendor(system)
    attributes, unsupported = {}, []
    if request.get("profile"):
        profile = bios_profiles.load(request["profile"])
        attributes, unsupported = bios_profiles.resolve(profile, vendor, request.get("features") or [])
    attributes.update(request.get("attributes") or {})
    attributes.update(request.get("overrides") or {})
    return vendor, attributes, unsupported


def read(client: Redfish, system: dict | None = None) -> dict:
    """Current and pending values (and the registry); pass `system` to reuse one already read."""
    system = system or client.system()
    bios_resource = client.get(client.bios_uri(system))
    settings_uri = client.settings_uri(bios_resource)
    settings = client.get(settings_uri) if settings_uri != bios_resource.get("@odata.id") else None
    current = bios_resource.get("Attributes") or {}
    return {"system": system, "bios": bios_resource, "settings_uri": settings_uri, "current": current,
            "pending": bios.pending_values(current, settings),
            "registry": registry_cache.registry(client, bios_resource, system)}


def run(client: Redfish, request: dict, check_mode: bool) -> dict:
    state = read(client)
    vendor, desired, unsupported = desired_attributes(request, state["system"])
    errors = bios.validate(desired, state["registry"])
    if errors:
        raise BiosError(f"BMC {client.address}: invalid BIOS attributes: {bios.describe(errors)}", invalid=errors,
                        vendor=vendor)
    plan = bios.plan(desired, state["current"], state["pending"])
    result = {"vendor": vendor, "changed": plan.changed, "pending": bool(plan.pending), "changes": plan.changes,
              "pending_attributes": plan.pending, "diff": {"before": plan.before, "after": plan.after},
              "unsupported_intents": unsupported, "registry": state["registry"] is not None,
              "system": state["system"].get("@odata.id"), "rebooted": False, "verified": not plan.after,
              "job": None}
    if vendor == "dell":
        result["job"] = dell_open_job(client)
    if check_mode or not (plan.changes or plan.pending):
        return result
    if plan.changes:
        if result["job"] and vendor == "dell":
            raise BiosError(
                f"BMC {client.address}: BIOS configuration job {result['job']['id']} is already "
                f"{result['job']['state']}; iDRAC accepts no new BIOS changes until it runs (reboot the node, "
                "e.g. reboot: when_required) or is deleted", job=result["job"], vendor=vendor, changes=plan.changes)
        result["job"] = patch(client, state, request, plan.changes, vendor)
    return finish(client, request, desired, result, state["system"])


def patch(client: Redfish, state: dict, request: dict, changes: dict, vendor: str) -> dict | None:
    entries = bios.registry_entries(state["registry"])
    payload = {"Attributes": {k: bios.typed(v, entries.get(k)) for k, v in changes.items()}}
    apply_time = apply_time_payload(request, state["bios"])
    if apply_time:
        payload["@Redfish.SettingsApplyTime"] = apply_time
    try:
        response, _ = client.patch(state["settings_uri"], payload)
    except RedfishError as exc:
        ids = " ".join(message_ids(exc.body))
        if vendor == "dell" and ("SYS011" in ids or "pending" in str(exc).lower()):
            raise BiosError(f"{exc} (iDRAC holds a pending BIOS configuration; it applies at the next reboot)",
                            vendor=vendor) from None
        raise
    job = _job_from(response)
    if vendor == "dell" and not job and request.get("apply_time") != "Immediate":
        job = dell_create_job(client, state["settings_uri"])
    return job


def apply_time_payload(request: dict, bios_resource: dict) -> dict | None:
    """@Redfish.SettingsApplyTime when the BMC advertises apply times; None lets it use its default."""
    supported = (bios_resource.get("@Redfish.Settings") or {}).get("SupportedApplyTimes")
    wanted = request.get("apply_time") or "OnReset"
    if not supported:
        return None
    if wanted not in supported:
        raise BiosError(f"apply time {wanted} is not supported by this BMC (supported: {', '.join(supported)})")
    payload = {"ApplyTime": wanted}
    window = request.get("maintenance_window") or {}
    if wanted.endswith("MaintenanceWindowStart") or "MaintenanceWindow" in wanted:
        if not window.get("start"):
            raise BiosError("apply_time in a maintenance window needs maintenance_window.start")
        payload["MaintenanceWindowStartTime"] = window["start"]
        payload["MaintenanceWindowDurationInSeconds"] = int(window.get("duration", 3600))
    return payload


def finish(client: Redfish, request: dict, desired: dict, result: dict, system: dict) -> dict:
    """After the PATCH: what is current now (the system read before is reused), and a reboot when
    values are still only pending."""
    state = read(client, system=system)
    still = bios.plan(desired, state["current"], state["pending"])
    result["reboot_required"] = bool(still.after)
    if still.after and request.get("reboot") == "when_required":
        client.reset(state["system"])
        client.wait_powered_on(request.get("reboot_timeout", 900))
        state = read(client)
        still = bios.plan(desired, state["current"], state["pending"])
        result["rebooted"] = True
        result["reboot_required"] = bool(still.after)
        if still.after:
            raise BiosError(f"BMC {client.address}: after the reboot these attributes still differ: "
                            f"{', '.join(sorted(still.after))}", unverified=still.after)
    result["verified"] = not still.after
    result["pending"] = bool(still.pending)
    result["pending_attributes"] = still.pending
    return result


def dell_open_job(client: Redfish) -> dict | None:
    """A scheduled BIOS configuration job on an iDRAC (one at a time is allowed)."""
    try:
        jobs = client.get(f"{DELL_JOBS}?$expand=*($levels=1)")
    except RedfishError:
        return None
    for job in jobs.get("Members") or []:
        if job.get("JobType") == "BIOSConfiguration" and job.get("JobState") in OPEN_JOB_STATES:
            return {"id": job.get("Id"), "state": job.get("JobState"), "message": job.get("Message")}
    return None


def dell_create_job(client: Redfish, settings_uri: str) -> dict | None:
    response, _ = client.post(DELL_JOBS, {"TargetSettingsURI": settings_uri})
    return _job_from(response) or {"id": None, "state": "Scheduled"}


def _job_from(response) -> dict | None:
    location = response.headers.get("Location") if response is not None else None
    if location and "JID_" in location:
        return {"id": location.rstrip("/").rsplit("/", 1)[-1], "state": "Scheduled"}
    return None
