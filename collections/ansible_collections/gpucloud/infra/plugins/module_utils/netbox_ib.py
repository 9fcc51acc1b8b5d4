# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""What NetBox says about InfiniBand partitions: each tenant's P_Key (tenant custom field ib_pkey, allocated by
gpucloud.infra.tenant_network) and the port GUIDs of its servers (device custom field ib_port_guids, devices
with that tenant), plus the GUIDs of shared ports (storage, subnet manager) named by GUID or device name.

Everything wrong is collected and raised at once (IbPartitionError), naming the tenant or device.
"""

from __future__ import annotations

import re

from ansible_collections.gpucloud.infra.plugins.module_utils.ib_partition import (GUID_RE, IbPartitionError,
                                                                                   build)

TENANTS = "tenancy/tenants"
DEVICES = "dcim/devices"
PKEY_RE = r"^0x[0-9a-fA-F]{4}$"


def read(nb, tenants: list[str] | None = None, limited: list[str] | None = None,
         exclude: list[str] | None = None, **options) -> dict:
    """The partition model (ib_partition.build) for the given tenant slugs, or for every tenant holding an ib_pkey;
    options go to build() (ipoib, index0, qos, default_ipoib). Returns {"model", "skipped"}: skipped names the
    tenants' devices without IB ports. exclude: tenant slugs left out (a tenant being released loses its
    partition before its P_Key goes back to the pool)."""
    errors: list[str] = []
    chosen = [t for t in _tenants(nb, tenants, errors) if t["slug"] not in set(exclude or [])]
    members, skipped = _members(nb, chosen, errors)
    shared = _limited(nb, limited or [], errors)
    if errors:
        raise IbPartitionError("NetBox's InfiniBand data", errors)
    entries = [{"tenant": t["slug"], "pkey": t["custom_fields"]["ib_pkey"], "members": members[t["id"]]}
               for t in chosen]
    return {"model": build(entries, shared, **options), "skipped": skipped}


def _tenants(nb, wanted: list[str] | None, errors: list[str]) -> list[dict]:
    rows = nb.list(TENANTS, fields="id,slug,custom_fields")
    by_slug = {t["slug"]: t for t in rows}
    chosen = [t for t in rows if _pkey(t)] if wanted is None else []
    for slug in dict.fromkeys(wanted or []):
        tenant = by_slug.get(slug)
        if tenant is None:
            errors.append(f"tenants: '{slug}' is not a NetBox tenant")
        elif not _pkey(tenant):
            errors.append(f"tenants: '{slug}' has no ib_pkey; allocate one with gpucloud.infra.tenant_network")
        else:
            chosen.append(tenant)
    for tenant in chosen:
        if not re.match(PKEY_RE, str(_pkey(tenant))):
            errors.append(f"tenant '{tenant['slug']}': ib_pkey '{_pkey(tenant)}' is not 0x and 4 hex digits")
    return chosen


def _pkey(tenant: dict):
    return (tenant.get("custom_fields") or {}).get("ib_pkey")


def _members(nb, tenants: list[dict], errors: list[str]) -> tuple[dict, list[str]]:
    members: dict[int, list[dict]] = {t["id"]: [] for t in tenants}
    skipped: list[str] = []
    if not tenants:
        return members, skipped
    devices = nb.list(DEVICES, tenant_id=[t["id"] for t in tenants], fields="id,name,tenant,custom_fields")
    for device in sorted(devices, key=lambda d: d["name"] or ""):
        guids = _guids(device, errors)
        if not guids:
            skipped.append(device["name"])
        members[device["tenant"]["id"]] += [{"guid": g, "device": device["name"]} for g in guids]
    return members, skipped


def _guids(device: dict, errors: list[str]) -> list[str]:
    value = (device.get("custom_fields") or {}).get("ib_port_guids")
    if value in (None, []):
        return []
    if not isinstance(value, list):
        errors.append(f"device '{device['name']}': ib_port_guids is {type(value).__name__}, not a list of GUIDs")
        return []
    bad = [g for g in value if not isinstance(g, str) or not GUID_RE.match(g)]
    if bad:
        errors.append(f"device '{device['name']}': ib_port_guids {bad} are not 0x and 16 hex digits")
    return [g.lower() for g in value if g not in bad]


def _limited(nb, names: list[str], errors: list[str]) -> list[dict]:
    """Limited members named by GUID (as they are) or by device name (that device's every port GUID)."""
    out = [{"guid": n.lower()} for n in names if GUID_RE.match(n)]
    devices = [n for n in dict.fromkeys(names) if not GUID_RE.match(n)]
    if not devices:
        return out
    found = {d["name"]: d for d in nb.list(DEVICES, name=devices, fields="id,name,tenant,custom_fields")}
    for name in devices:
        device = found.get(name)
        if device is None:
            errors.append(f"limited_members: '{name}' is neither a GUID (0x and 16 hex digits) nor a NetBox device")
            continue
        guids = _guids(device, errors)
        if not guids:
            errors.append(f"limited_members: device '{name}' has no ib_port_guids")
        out += [{"guid": g, "device": name} for g in guids]
    return list({m["guid"]: m for m in reversed(out)}.values())[::-1]  # a GUID given twice counts once
