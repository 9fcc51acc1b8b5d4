# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Fetch a GPU fleet from NetBox in bulk and shape it into host records.

NetBox's own cost per serialised object dominates (two cores serve thousands of devices and
interfaces). With gpucloud's NetBox plugin installed, one request returns the needed columns,
read in one pass per table. Without it, the fetch asks GraphQL only for what the hosts need,
in parallel chunks of device ids:

  1. the ids of matching devices (one light query), the device types, the tenant check;
  2. per chunk of ids, the devices with their interfaces, IP addresses and cable ids;
  3. per chunk, the far ends of those cables (switch and port names) in one query.

Tenant scoping is a NetBox-side filter ANDed with the operator's filters, so another tenant's
devices never cross the wire and no filter can widen the scope.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError

CHUNK = 125  # device ids per GraphQL request: enough chunks to keep every NetBox worker busy
HARDWARE_FIELDS = ("gpu_vendor", "gpu_model", "gpu_count", "gpu_memory_gb", "cpu_vendor", "cpu_cores",
                   "memory_gb", "hourly_cost")

DEVICE_IDS = "query($f: DeviceFilter) { device_list(filters: $f) { id } }"
DEVICE_FIELDS = """id name status position custom_fields last_updated
  tenant { slug } site { slug } location { slug } rack { name } role { slug } platform { slug }
  device_type { id } primary_ip4 { address } oob_ip { address }"""
INTERFACE_FIELDS = "interfaces { id name type mgmt_only enabled cable { id } ip_addresses { address } }"
DEVICES = "query($ids: [ID!]) { device_list(filters: {id: {in_list: $ids}}) { %s } }"
# The far ends of our cables, found by cable id: one query, no per-cable termination lookups.
FAR_ENDS = """query($cables: [ID!], $ids: [ID!]) { interface_list(filters: {
  cable: {id: {in_list: $cables}}, NOT: {device: {id: {in_list: $ids}}}}) { name cable { id } device { name } } }"""
DEVICE_TYPES = "query { device_type_list { id slug manufacturer { slug } custom_fields } }"
TENANT = "query($slug: String!) { tenant_list(filters: {slug: {exact: $slug}}) { id } }"


class InventoryQuery:
    """What to fetch: device roles, an optional tenant, and NetBox GraphQL DeviceFilter narrowing."""

    def __init__(self, tenant=None, roles=None, filters=None, interfaces=True):
        self.tenant = tenant
        self.roles = list(roles or [])
        self.filters = dict(filters or {})
        self.interfaces = interfaces

    def device_filter(self) -> dict:
        scope: dict = {}
        if self.roles:
            scope["role"] = {"slug": {"in_list": self.roles}}
        if self.tenant:
            scope["tenant"] = {"slug": {"exact": self.tenant}}
        if self.filters:
            # The operator's filters only ever narrow: they sit under AND beside the scope.
            scope["AND"] = self.filters
        return scope


def change_marker(nb) -> str:
    """The newest change-log entry: if it is unchanged, nothing in NetBox has changed."""
    page = nb.get("core/object-changes", limit=1, ordering="-id", fields="id,time")
    latest = page["results"][0] if page["results"] else {"id": 0, "time": ""}
    return f"{latest['id']}@{latest['time']}"


def _chunks(ids: list) -> list[list]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


EXPORT = "plugins/gpucloud/inventory"


def fetch(nb, query: InventoryQuery, workers: int = 6) -> dict:
    """Raw objects for the query, from gpucloud's NetBox plugin when installed, else GraphQL."""
    if not query.filters:  # the export filters by role and tenant; other filters need GraphQL
        try:
            return _from_export(nb.get(EXPORT, role=query.roles, tenant=query.tenant or "",
                                       interfaces=str(query.interfaces).lower()))
        except NetBoxError as exc:
            if exc.status != 404:
                raise
    return fetch_graphql(nb, query, workers)


def _from_export(export: dict) -> dict:
    """The plugin's flat rows in the shape the GraphQL path produces."""
    ips: dict[int, list[dict]] = {}
    for ip in export["ip_addresses"]:
        ips.setdefault(ip["interface_id"], []).append({"address": ip["address"]})
    interfaces: dict[int, list[dict]] = {}
    for i in export["interfaces"]:
        interfaces.setdefault(i["device_id"], []).append({
            "id": i["id"], "name": i["name"], "type": i["type"], "mgmt_only": i["mgmt_only"], "enabled": i["enabled"],
            "cable": {"id": i["cable_id"]} if i["cable_id"] else None, "ip_addresses": ips.get(i["id"], [])})
    far = {f["cable_id"]: {"device": f["device"], "interface": f["interface"]} for f in export["far_ends"]}
    peers = {i["id"]: far[i["cable"]["id"]]
             for ifaces in interfaces.values() for i in ifaces if i["cable"] and i["cable"]["id"] in far}

    def nested(value, key="slug"):
        return {key: value} if value is not None else None

    devices = [{
        "id": d["id"], "name": d["name"], "status": d["status"], "position": d["position"],
        "custom_fields": d["custom_field_data"], "last_updated": d["last_updated"],
        "tenant": nested(d["tenant__slug"]), "site": nested(d["site__slug"]),
        "location": nested(d["location__slug"]), "rack": nested(d["rack__name"], "name"),
        "role": nested(d["role__slug"]), "platform": nested(d["platform__slug"]),
        "device_type": {"id": d["device_type_id"]}, "primary_ip4": nested(d["primary_ip4__address"], "address"),
        "oob_ip": nested(d["oob_ip__address"], "address"), "interfaces": interfaces.get(d["id"], []),
    } for d in export["devices"]]
    types = [{"id": t["id"], "slug": t["slug"], "manufacturer": nested(t["manufacturer__slug"]),
              "custom_fields": t["custom_field_data"]} for t in export["device_types"]]
    return {"devices": devices, "device_types": types, "peers": peers}


def fetch_graphql(nb, query: InventoryQuery, workers: int = 6) -> dict:
    """Raw objects for the query: devices (with interfaces and IPs), device types and cable peers.

    Each chunk of device ids is one pipeline (devices with interfaces, then their cables' far
    ends), and chunks run side by side, so NetBox's workers stay busy without stage barriers.
    """
    fields = DEVICE_FIELDS + (" " + INTERFACE_FIELDS if query.interfaces else "")
    with ThreadPoolExecutor(workers) as pool:
        tenant_f = pool.submit(nb.graphql, TENANT, {"slug": query.tenant}) if query.tenant else None
        types_f = pool.submit(nb.graphql, DEVICE_TYPES)
        ids = [d["id"] for d in nb.graphql(DEVICE_IDS, {"f": query.device_filter()})["device_list"]]
        if tenant_f and not tenant_f.result()["tenant_list"]:
            raise NetBoxError(f"tenant '{query.tenant}' does not exist in NetBox")
        parts = [pool.submit(_chunk, nb, DEVICES % fields, c) for c in _chunks(ids)]
        devices, peers = [], {}
        for part in parts:
            chunk_devices, chunk_peers = part.result()
            devices.extend(chunk_devices)
            peers.update(chunk_peers)
        return {"devices": devices, "device_types": types_f.result()["device_type_list"], "peers": peers}


def _chunk(nb, devices_query: str, device_ids: list) -> tuple[list[dict], dict]:
    devices = nb.graphql(devices_query, {"ids": device_ids})["device_list"]
    return devices, _cable_peers(nb, devices, device_ids)


def _cable_peers(nb, devices: list[dict], device_ids: list) -> dict[str, dict]:
    """For each cabled interface id of these devices: the far end's interface and device names."""
    by_cable = {i["cable"]["id"]: i["id"] for d in devices for i in d.get("interfaces") or [] if i.get("cable")}
    if not by_cable:
        return {}
    far = nb.graphql(FAR_ENDS, {"cables": sorted(by_cable), "ids": device_ids})["interface_list"]
    return {by_cable[end["cable"]["id"]]: {"device": end["device"]["name"], "interface": end["name"]}
            for end in far if end["cable"]["id"] in by_cable}


def _slug(obj):
    return (obj.get("slug") or obj.get("name")) if isinstance(obj, dict) else None


def _value(value):
    """Select custom fields come back as {"value", "label"}; hosts get the value."""
    return value.get("value") if isinstance(value, dict) and "value" in value else value


def _address(ip):
    return ip["address"].split("/")[0] if isinstance(ip, dict) and ip.get("address") else None


def build_hosts(raw: dict, uplinks=("eth0", "ib0")) -> dict[str, dict]:
    """Host records (hostvars) keyed by device name, from fetch()'s raw objects."""
    types = {t["id"]: t for t in raw["device_types"]}
    hosts = {}
    for dev in raw["devices"]:
        if not dev.get("name"):
            continue  # unnamed devices cannot be inventory hosts
        dtype = types.get((dev.get("device_type") or {}).get("id"), {})
        hosts[dev["name"]] = _host(dev, dtype, dev.get("interfaces") or [], raw["peers"], uplinks)
    return hosts


def _interface(iface: dict, peers: dict) -> dict:
    return {"name": iface["name"], "type": (iface.get("type") or "").lower().replace("_", "-") or None,
            "mgmt_only": iface.get("mgmt_only", False), "enabled": iface.get("enabled", True),
            "ip_addresses": sorted(ip["address"] for ip in iface.get("ip_addresses") or []),
            "connected_to": peers.get(iface["id"])}


def _host(dev: dict, dtype: dict, ifaces: list[dict], peers: dict, uplinks) -> dict:
    cfs = dict(dev.get("custom_fields") or {})
    type_cfs = dtype.get("custom_fields") or {}
    # A device's own value overrides its type's (e.g. a per-node hourly cost).
    hardware = {f: _value(cfs.get(f) if cfs.get(f) is not None else type_cfs.get(f)) for f in HARDWARE_FIELDS}
    interfaces = [_interface(i, peers) for i in sorted(ifaces, key=lambda i: i["name"])]
    connected = {i["name"]: i["connected_to"] for i in interfaces if i["connected_to"]}
    eth, ib = (connected.get(name) or {} for name in uplinks)
    return {
        "netbox_id": int(dev["id"]),
        "status": (dev.get("status") or "").lower() or None,
        "tenant": _slug(dev.get("tenant")),
        "site": _slug(dev.get("site")),
        "location": _slug(dev.get("location")),
        "rack": (dev.get("rack") or {}).get("name"),
        "rack_position": float(dev["position"]) if dev.get("position") is not None else None,
        "role": _slug(dev.get("role")),
        "platform": _slug(dev.get("platform")),
        "device_type": dtype.get("slug"),
        "manufacturer": _slug(dtype.get("manufacturer")),
        **hardware,
        "nvlink_domain": cfs.get("nvlink_domain"),
        "project": cfs.get("project") or None,  # the tenant project the node is booked for (a Slurm partition)
        "ib_port_guids": cfs.get("ib_port_guids") or [],
        "leaf_switch": eth.get("device"), "leaf_port": eth.get("interface"),
        "ib_leaf_switch": ib.get("device"), "ib_leaf_port": ib.get("interface"),
        "mgmt_ip": _address(dev.get("primary_ip4")),
        "bmc_address": _address(dev.get("oob_ip")),
        "bmc_credential_ref": cfs.get("bmc_credential_ref"),
        "bios_overrides": cfs.get("bios_overrides") or {},
        "interfaces": interfaces,
        "netbox_last_updated": (dev.get("last_updated") or "").replace("+00:00", "Z") or None,
    }
