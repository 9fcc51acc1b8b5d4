# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Fetch a GPU fleet from NetBox in bulk and shape it into host records.

Everything is fetched with REST `fields=` selections (only the columns used) in parallel pages:
devices, device types, interfaces with their cable peers, and IP addresses. Tenant scoping is
applied by NetBox itself (the `tenant` filter on devices and on device components), so another
tenant's objects never cross the wire.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

DEVICE_FIELDS = ("id,name,status,tenant,site,location,rack,position,role,platform,device_type,"
                 "primary_ip4,oob_ip,custom_fields,last_updated")
INTERFACE_FIELDS = "id,name,type,mgmt_only,enabled,mac_address,device,link_peers"
IP_FIELDS = "id,address,assigned_object_id,dns_name,status"
TYPE_FIELDS = "id,slug,model,manufacturer,custom_fields"
HARDWARE_FIELDS = ("gpu_vendor", "gpu_model", "gpu_count", "gpu_memory_gb", "cpu_vendor", "cpu_cores",
                   "memory_gb", "hourly_cost")
IP_BATCH = 250


class InventoryQuery:
    """What to fetch: NetBox REST filters shared by devices and their components."""

    def __init__(self, tenant=None, roles=None, filters=None, interfaces=True, page_size=500):
        self.tenant = tenant
        self.roles = list(roles or [])
        self.filters = dict(filters or {})
        self.interfaces = interfaces
        self.page_size = page_size

    def device_params(self) -> dict:
        params = dict(self.filters)
        if self.roles:
            params["role"] = self.roles
        if self.tenant:
            params["tenant"] = self.tenant
        return params

    def component_params(self) -> dict:
        """Device filters spelled as device-component filters (interfaces)."""
        renames = {"role": "device_role", "status": "device_status", "name": "device", "id": "device_id"}
        return {renames.get(k, k): v for k, v in self.device_params().items()}


def change_marker(nb) -> str:
    """The newest change-log entry: if it is unchanged, nothing in NetBox has changed."""
    page = nb.get("core/object-changes", limit=1, ordering="-id", fields="id,time")
    latest = page["results"][0] if page["results"] else {"id": 0, "time": ""}
    return f"{latest['id']}@{latest['time']}"


def _paged(nb, pool, path: str, fields: str, params: dict, page_size: int) -> list[dict]:
    """Every object of a filtered list, its pages fetched in parallel after one counting call."""
    first = nb.get(path, limit=page_size, offset=0, fields=fields, **params)
    pages = math.ceil(first["count"] / page_size)
    rest = pool.map(lambda n: nb.get(path, limit=page_size, offset=n * page_size, fields=fields, **params)["results"],
                    range(1, pages))
    return first["results"] + [obj for page in rest for obj in page]


def fetch(nb, query: InventoryQuery, workers: int = 6) -> dict:
    """Raw objects for the query: devices, device_types, interfaces and ip_addresses."""
    with ThreadPoolExecutor(workers) as pool:
        devices_f = pool.submit(_paged, nb, pool, "dcim/devices", DEVICE_FIELDS, query.device_params(),
                                query.page_size)
        types_f = pool.submit(nb.list, "dcim/device-types", fields=TYPE_FIELDS)
        ifaces_f = (pool.submit(_paged, nb, pool, "dcim/interfaces", INTERFACE_FIELDS, query.component_params(),
                                query.page_size * 2) if query.interfaces else None)
        devices = devices_f.result()
        ids = [d["id"] for d in devices]
        ip_pages = pool.map(lambda batch: nb.list("ipam/ip-addresses", page_size=IP_BATCH * 4, fields=IP_FIELDS,
                                                  device_id=batch),
                            [ids[i:i + IP_BATCH] for i in range(0, len(ids), IP_BATCH)])
        return {
            "devices": devices,
            "device_types": types_f.result(),
            "interfaces": ifaces_f.result() if ifaces_f else [],
            "ip_addresses": [ip for page in ip_pages for ip in page],
        }


def _slug(obj):
    return obj.get("slug") or obj.get("name") if isinstance(obj, dict) else None


def _address(ip):
    return ip["address"].split("/")[0] if isinstance(ip, dict) and ip.get("address") else None


def _peer(iface: dict):
    for peer in iface.get("link_peers") or []:
        if isinstance(peer, dict) and peer.get("device"):
            return {"device": peer["device"].get("name"), "interface": peer.get("name")}
    return None


def build_hosts(raw: dict, uplinks=("eth0", "ib0")) -> dict[str, dict]:
    """Host records (hostvars) keyed by device name, from fetch()'s raw objects."""
    types = {t["id"]: t for t in raw["device_types"]}
    ips_by_iface: dict[int, list[str]] = {}
    for ip in raw["ip_addresses"]:
        ips_by_iface.setdefault(ip.get("assigned_object_id"), []).append(ip["address"])
    ifaces_by_device: dict[int, list[dict]] = {}
    for iface in raw["interfaces"]:
        ifaces_by_device.setdefault(iface["device"]["id"], []).append(iface)
    hosts = {}
    for dev in raw["devices"]:
        if not dev.get("name"):
            continue  # unnamed devices cannot be inventory hosts
        hosts[dev["name"]] = _host(dev, types.get((dev.get("device_type") or {}).get("id"), {}),
                                   ifaces_by_device.get(dev["id"], []), ips_by_iface, uplinks)
    return hosts


def _host(dev: dict, dtype: dict, ifaces: list[dict], ips_by_iface: dict, uplinks) -> dict:
    cfs = dict(dev.get("custom_fields") or {})
    type_cfs = dtype.get("custom_fields") or {}
    hardware = {f: cfs.get(f) if cfs.get(f) is not None else type_cfs.get(f) for f in HARDWARE_FIELDS}
    interfaces = [{
        "name": i["name"], "type": (i.get("type") or {}).get("value"), "mgmt_only": i.get("mgmt_only", False),
        "enabled": i.get("enabled", True), "mac_address": i.get("mac_address"),
        "ip_addresses": sorted(ips_by_iface.get(i["id"], [])), "connected_to": _peer(i),
    } for i in sorted(ifaces, key=lambda i: i["name"])]
    peers = {i["name"]: i["connected_to"] for i in interfaces if i["connected_to"]}
    eth, ib = (peers.get(name) or {} for name in uplinks)
    rack = dev.get("rack") or {}
    return {
        "netbox_id": dev["id"],
        "status": (dev.get("status") or {}).get("value"),
        "tenant": _slug(dev.get("tenant")),
        "site": _slug(dev.get("site")),
        "location": _slug(dev.get("location")),
        "rack": rack.get("name"),
        "rack_position": dev.get("position"),
        "role": _slug(dev.get("role")),
        "platform": _slug(dev.get("platform")),
        "device_type": _slug(dev.get("device_type")),
        "manufacturer": _slug((dev.get("device_type") or {}).get("manufacturer")),
        **hardware,
        "nvlink_domain": cfs.get("nvlink_domain"),
        "ib_port_guids": cfs.get("ib_port_guids") or [],
        "leaf_switch": eth.get("device"), "leaf_port": eth.get("interface"),
        "ib_leaf_switch": ib.get("device"), "ib_leaf_port": ib.get("interface"),
        "mgmt_ip": _address(dev.get("primary_ip4")),
        "bmc_address": _address(dev.get("oob_ip")),
        "bmc_credential_ref": cfs.get("bmc_credential_ref"),
        "interfaces": interfaces,
        "netbox_custom_fields": cfs,
        "netbox_last_updated": dev.get("last_updated"),
    }
