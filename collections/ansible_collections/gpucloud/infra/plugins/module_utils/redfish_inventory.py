# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""What a BMC says about its system (facts), and one-time boot overrides (PXE, virtual media)."""

from __future__ import annotations

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
    }


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


def insert_media(client: Redfish, image: str, check_mode: bool) -> dict:
    """Attach an ISO as virtual CD on the first manager that offers one; no change when already inserted."""
    managers = client.get("/redfish/v1/Managers").get("Members") or []
    for manager in managers:
        try:
            media = client.get(f"{manager['@odata.id']}/VirtualMedia").get("Members") or []
        except RedfishError:
            continue
        for member in media:
            device = client.get(member["@odata.id"])
            if not {"CD", "DVD"} & set(device.get("MediaTypes") or []):
                continue
            if device.get("Inserted") and device.get("Image") == image:
                return {"changed": False, "media": member["@odata.id"]}
            if not check_mode:
                action = ((device.get("Actions") or {}).get("#VirtualMedia.InsertMedia") or {}).get("target")
                if action:
                    client.post(action, {"Image": image, "Inserted": True, "WriteProtected": True})
                else:
                    client.patch(member["@odata.id"], {"Image": image, "Inserted": True})
            return {"changed": True, "media": member["@odata.id"]}
    raise RedfishError(f"BMC {client.address}: no virtual CD/DVD device found")
