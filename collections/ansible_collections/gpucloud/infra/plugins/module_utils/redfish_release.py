# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Detach a node from its last deployment over Redfish: every virtual medium ejected, no boot-source override.

Read, compare, act. redfish_inventory's eject handles the deploy's own CD; a node leaving a tenant must lose
whatever the tenant left in any slot (CD, floppy, USB stick images), under the system or any manager.
"""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish, RedfishError


def media_devices(client: Redfish) -> list[dict]:
    """Every VirtualMedia resource of the system (Redfish 1.11+) and of each manager (older BMCs), once each."""
    system = client.system()
    collections = [(system.get("VirtualMedia") or {}).get("@odata.id")]
    collections += [f"{m['@odata.id']}/VirtualMedia"
                    for m in client.get("/redfish/v1/Managers", cached=True).get("Members") or []]
    seen, devices = set(), []
    for collection in filter(None, collections):
        try:
            members = client.get(collection).get("Members") or []
        except RedfishError:
            continue  # a manager without virtual media
        for member in members:
            if member["@odata.id"] not in seen:
                seen.add(member["@odata.id"])
                devices.append(client.get(member["@odata.id"]))
    return devices


def holds_media(device: dict) -> bool:
    return bool(device.get("Inserted")) or bool(device.get("Image"))


def eject_all(client: Redfish, check_mode: bool) -> dict:
    """Eject every inserted medium; {ejected: [{media, image}], media: [every device's URI]}."""
    devices = media_devices(client)
    ejected = []
    for device in filter(holds_media, devices):
        if not check_mode:
            action = ((device.get("Actions") or {}).get("#VirtualMedia.EjectMedia") or {}).get("target")
            if action:
                client.post(action, {})
            else:
                client.patch(device["@odata.id"], {"Image": None, "Inserted": False})
        ejected.append({"media": device["@odata.id"], "image": device.get("Image") or None})
    return {"ejected": ejected, "media": [d["@odata.id"] for d in devices]}


def boot_plan(boot: dict, fallback: str) -> dict | None:
    """The PATCH body that clears the boot-source override, or None when none is in effect.

    Clearing is BootSourceOverrideEnabled=Disabled. A BMC that cannot disable it (it offers no target "None";
    sushy-tools always reports Continuous) is parked on `fallback` instead, the target a free node boots from."""
    enabled = boot.get("BootSourceOverrideEnabled")
    target = boot.get("BootSourceOverrideTarget")
    if enabled in (None, "Disabled") or target in (None, "None"):
        return None
    allowed = boot.get("BootSourceOverrideTarget@Redfish.AllowableValues")
    if not allowed or "None" in allowed:
        return {"Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}}
    if target == fallback:
        return None
    if fallback not in allowed:
        raise RedfishError(f"the BMC can neither disable the boot override nor set {fallback} "
                           f"(allowed targets: {', '.join(allowed)})")
    return {"Boot": {"BootSourceOverrideTarget": fallback}}


def clear_boot(client: Redfish, fallback: str, check_mode: bool) -> dict:
    system = client.system()
    boot = system.get("Boot") or {}
    before = {"target": boot.get("BootSourceOverrideTarget"), "enabled": boot.get("BootSourceOverrideEnabled")}
    try:
        patch = boot_plan(boot, fallback)
    except RedfishError as exc:
        raise RedfishError(f"BMC {client.address}: {exc}") from None
    if patch and not check_mode:
        client.patch(system["@odata.id"], patch)
    after = {**before, **({"target": patch["Boot"]["BootSourceOverrideTarget"],
                           "enabled": patch["Boot"].get("BootSourceOverrideEnabled", before["enabled"])}
                          if patch else {})}
    return {"changed": bool(patch), "before": before, "after": after}


def release(client: Redfish, fallback: str, check_mode: bool) -> dict:
    media = eject_all(client, check_mode)
    boot = clear_boot(client, fallback, check_mode)
    before = {"media": {e["media"]: e["image"] for e in media["ejected"]}, "boot": boot["before"]}
    after = {"media": {e["media"]: None for e in media["ejected"]}, "boot": boot["after"]}
    return {"changed": bool(media["ejected"]) or boot["changed"], "ejected": media["ejected"],
            "media": media["media"], "boot": boot["after"], "boot_changed": boot["changed"],
            "diff": {"before": before, "after": after}}
