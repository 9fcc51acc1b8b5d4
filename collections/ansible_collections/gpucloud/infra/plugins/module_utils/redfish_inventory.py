# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""What a BMC says about its system (facts), one-time boot overrides (PXE, virtual media), virtual CD and power."""

from __future__ import annotations

import time

from ansible_collections.gpucloud.infra.plugins.module_utils.bios_profiles import detect_vendor
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish, RedfishError

GPU_CLASSES = ("DisplayController", "ProcessingAccelerator")
GPU_VENDORS = ("nvidia", "amd", "advanced micro devices", "intel", "habana")
BOOT_TARGETS = {"pxe": "Pxe", "cd": "Cd", "usb": "Usb", "hdd": "Hdd", "bios_setup": "BiosSetup", "none": "None"}


def facts(client: Redfish) -> dict:
    system = client.system()
    boot = system.get("Boot") or {}
    devices = pcie_devices(client, system)
    return {
        "vendor": detect_vendor(system),
        "manufacturer": system.get("Manufacturer"),
        "model": system.get("Model"),
        "serial": system.get("SerialNumber"),
        "uuid": system.get("UUID"),
        "bios_version": system.get("BiosVersion"),
        "power_state": system.get("PowerState"),
        "system_uri": system.get("@odata.id"),
        "boot": {"source_override_target": boot.get("BootSourceOverrideTarget"),
                 "source_override_enabled": boot.get("BootSourceOverrideEnabled"),
                 "source_override_mode": boot.get("BootSourceOverrideMode"),
                 "allowed_targets": boot.get("BootSourceOverrideTarget@Redfish.AllowableValues") or []},
        "processors": (system.get("ProcessorSummary") or {}).get("Count"),
        "memory_gib": (system.get("MemorySummary") or {}).get("TotalSystemMemoryGiB"),
        "pcie_devices": devices,
        "gpus": [d for d in devices if d["is_gpu"]],
        "virtual_media": _cd_state(client),
    }


def _cd_state(client: Redfish) -> dict | None:
    """What the virtual CD holds (the golden-image deploy compares it), None when the BMC has none."""
    try:
        return media_state(cd_device(client))
    except RedfishError:
        return None


def pcie_devices(client: Redfish, system: dict) -> list[dict]:
    """PCIe devices where the BMC exposes them: linked from the system, else the chassis collection.
    Many BMCs expose neither (the lab's emulator among them): the list is then empty."""
    links = [d.get("@odata.id") for d in system.get("PCIeDevices") or [] if isinstance(d, dict)]
    if not links:
        for chassis in (system.get("Links") or {}).get("Chassis") or []:
            try:
                collection = client.get(f"{chassis['@odata.id']}/PCIeDevices")
            except RedfishError:
                continue
            links += [m.get("@odata.id") for m in collection.get("Members") or []]
    devices = []
    for link in filter(None, links):
        try:
            devices.append(_device(client, client.get(link)))
        except RedfishError:
            continue
    return devices


def _device(client: Redfish, device: dict) -> dict:
    functions = []
    link = ((device.get("PCIeFunctions") or {}).get("@odata.id")
            or ((device.get("Links") or {}).get("PCIeFunctions") or [{}])[0].get("@odata.id"))
    if link:
        try:
            functions = [client.get(m["@odata.id"]) for m in client.get(link).get("Members") or []]
        except RedfishError:
            functions = []
    classes = {f.get("DeviceClass") for f in functions}
    manufacturer = device.get("Manufacturer") or ""
    return {"id": device.get("Id"), "name": device.get("Name"), "manufacturer": manufacturer,
            "model": device.get("Model"), "part_number": device.get("PartNumber"),
            "firmware_version": device.get("FirmwareVersion"),
            "is_gpu": is_gpu(classes, manufacturer, device.get("Name") or "")}


def is_gpu(classes: set, manufacturer: str, name: str) -> bool:
    """By PCIe device class when functions are exposed, else by a GPU vendor's name (NICs excluded)."""
    if classes & set(GPU_CLASSES):
        return True
    return any(v in manufacturer.lower() for v in GPU_VENDORS) and "nic" not in name.lower()


def boot_override(client: Redfish, target: str, once: bool, check_mode: bool) -> dict:
    """Set a one-time (or continuous) boot source; no change when it is already set that way."""
    system = client.system()
    wanted_target = BOOT_TARGETS[target]
    wanted_enabled = "Disabled" if target == "none" else ("Once" if once else "Continuous")
    boot = system.get("Boot") or {}
    allowed = boot.get("BootSourceOverrideTarget@Redfish.AllowableValues")
    if allowed and wanted_target not in allowed:
        raise RedfishError(f"BMC {client.address}: boot target {wanted_target} not offered "
                           f"(allowed: {', '.join(allowed)})")
    before = {"target": boot.get("BootSourceOverrideTarget"), "enabled": boot.get("BootSourceOverrideEnabled")}
    after = {"target": wanted_target, "enabled": wanted_enabled}
    changed = before != after and not (target == "none" and before["enabled"] == "Disabled")
    if changed and not check_mode:
        client.patch(system["@odata.id"], {"Boot": {"BootSourceOverrideTarget": wanted_target,
                                                     "BootSourceOverrideEnabled": wanted_enabled}})
    return {"changed": changed, "diff": {"before": before, "after": after}}


def _media_collections(client: Redfish) -> list[str]:
    """VirtualMedia collections: the system's (Redfish 1.11+ moved it there; sushy-tools serves only that one),
    then each manager's (older BMCs)."""
    system = client.system()
    links = [(system.get("VirtualMedia") or {}).get("@odata.id")]
    for manager in client.get("/redfish/v1/Managers", cached=True).get("Members") or []:
        links.append(f"{manager['@odata.id']}/VirtualMedia")
    return [link for link in links if link]


def cd_device(client: Redfish) -> dict:
    """The first virtual CD/DVD device the BMC offers (the resource itself)."""
    for collection in _media_collections(client):
        try:
            members = client.get(collection).get("Members") or []
        except RedfishError:
            continue
        for member in members:
            device = client.get(member["@odata.id"])
            if {"CD", "DVD"} & set(device.get("MediaTypes") or []):
                return device
    raise RedfishError(f"BMC {client.address}: no virtual CD/DVD device found")


def media_state(device: dict) -> dict:
    return {"media": device.get("@odata.id"), "image": device.get("Image") or None,
            "inserted": bool(device.get("Inserted"))}


def insert_media(client: Redfish, image: str, check_mode: bool) -> dict:
    """Attach an image as virtual CD; no change when it is already inserted. A BMC that downloads the image
    (sushy-tools does) fails here when it cannot: the error says the URL and what the BMC answered."""
    device = cd_device(client)
    before = media_state(device)
    if before["inserted"] and before["image"] == image:
        return {"changed": False, "media": before["media"], "diff": {"before": before, "after": before}}
    if not check_mode:
        action = ((device.get("Actions") or {}).get("#VirtualMedia.InsertMedia") or {}).get("target")
        try:
            if action:
                client.post(action, {"Image": image, "Inserted": True, "WriteProtected": True})
            else:
                client.patch(before["media"], {"Image": image, "Inserted": True})
        except RedfishError as exc:
            # The error's own message says why (e.g. the BMC's download got a 404); its MessageId often does not.
            detail = (exc.body.get("error") or {}).get("message")
            why = f"{detail} (HTTP {exc.status})" if detail else str(exc)
            raise RedfishError(f"BMC {client.address} could not insert {image}: {why}", exc.status,
                               exc.body) from None
    after = {**before, "image": image, "inserted": True}
    return {"changed": True, "media": before["media"], "diff": {"before": before, "after": after}}


def eject_media(client: Redfish, check_mode: bool) -> dict:
    """Eject the virtual CD; no change when it is empty."""
    device = cd_device(client)
    before = media_state(device)
    after = {**before, "image": None, "inserted": False}
    if not before["inserted"] and not before["image"]:
        return {"changed": False, "media": before["media"], "diff": {"before": before, "after": before}}
    if not check_mode:
        action = ((device.get("Actions") or {}).get("#VirtualMedia.EjectMedia") or {}).get("target")
        if action:
            client.post(action, {})
        else:
            client.patch(before["media"], {"Image": None, "Inserted": False})
    return {"changed": True, "media": before["media"], "diff": {"before": before, "after": after}}


# -- power -------------------------------------------------------------------------------------------

POWER_STATES = ("on", "off", "restarted")


def power(client: Redfish, state: str, reset_type: str, check_mode: bool) -> dict:
    """Bring the system to `state`. on/off change nothing when already there; restarted is an action and
    always acts: reset_type (ForceRestart by default) when the system is on, On when it is off."""
    system = client.system()
    before = system.get("PowerState")
    if state == "on":
        sent = None if before == "On" else "On"
    elif state == "off":
        sent = None if before == "Off" else reset_type
    else:
        sent = reset_type if before == "On" else "On"
    if sent and not check_mode:
        client.reset(system, sent)
    return {"changed": bool(sent), "reset_type": sent, "power_state_before": before,
            "wanted": "Off" if state == "off" else "On"}


def wait_power(client: Redfish, wanted: str, timeout: float, poll: float = 2.0) -> str:
    """Poll PowerState until it is `wanted`; a reset may first show the old state, so only `wanted` counts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            current = client.system().get("PowerState")
        except RedfishError:
            current = None  # a BMC may drop requests while the host resets
        if current == wanted:
            return current
        if time.monotonic() > deadline:
            raise RedfishError(f"BMC {client.address}: the system is {current or 'unreachable'}, not {wanted}, "
                               f"after {timeout:.0f} s")
        time.sleep(poll)
