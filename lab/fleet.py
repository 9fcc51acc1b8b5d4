"""Writes a planned demo fleet into NetBox with bulk API calls, creating only what is missing.

Order matters and mirrors NetBox's dependencies: tenants and locations, racks, devices (which
instantiate their interface templates), IP addresses on interfaces, primary/OOB IPs, the switches'
underlay (ASN, loopback and point-to-point addresses), cables.
Lookups go by id maps fetched once with `fields=`, so NetBox resolves no nested references.
"""

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox
from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_reconcile import reconcile
from lab.fleet_plan import BMC_CREDENTIAL_REF, BMC_NET, LOOPBACK_NET, MGMT_NET, P2P_NET, TENANTS, Fleet

# NetBox spends ~0.2 CPU-s per device (component instantiation, signals, change log) on this
# class of machine; bulk requests remove the per-request overhead and parallel chunks keep both
# cores and every gunicorn worker busy.
PARALLEL_REQUESTS = 3
CHUNK = 100
TENANT_QUOTAS = {"quota_gpus": 64, "quota_cpus": 1024, "quota_memory_gb": 16384, "quota_storage_tb": 100}


def ids(nb: NetBox, endpoint: str, key: str = "name", **params) -> dict:
    return {obj[key]: obj["id"] for obj in nb.list(endpoint, page_size=5000, fields=f"id,{key}", **params)}


def _chunks(objects: list[dict]) -> list[list[dict]]:
    return [objects[i:i + CHUNK] for i in range(0, len(objects), CHUNK)]


def _in_parallel(send, objects: list[dict]) -> list[dict]:
    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        return [obj for chunk in pool.map(send, _chunks(objects)) for obj in chunk]


def create_devices(nb: NetBox, devices: list[dict]) -> None:
    """Create devices with each concurrent request working on a different device type.

    NetBox bumps DeviceType.device_count inside each create transaction; two requests creating
    devices of one type serialise on that row lock (seconds of waiting per request), so chunks of
    one type go one after another and only different types run side by side.
    """
    by_type: dict[int, list[dict]] = {}
    for device in devices:
        by_type.setdefault(device["device_type"], []).append(device)

    def one_type(objects):
        for chunk in _chunks(objects):
            nb.create("dcim/devices", chunk)

    # Longest work first: NetBox's cost is mostly per instantiated interface (65 on a switch, 4 on a server).
    ports = {t["id"]: t["interface_template_count"]
             for t in nb.list("dcim/device-types", fields="id,interface_template_count")}
    queues = sorted(by_type.values(), key=lambda objs: len(objs) * (1 + ports[objs[0]["device_type"]]),
                    reverse=True)
    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        list(pool.map(one_type, queues))


def create_parallel(nb: NetBox, endpoint: str, objects: list[dict]) -> list[dict]:
    return _in_parallel(lambda chunk: nb.create(endpoint, chunk), objects)


def update_parallel(nb: NetBox, endpoint: str, objects: list[dict]) -> list[dict]:
    return _in_parallel(lambda chunk: nb.update(endpoint, chunk), objects)


def ensure_places(nb: NetBox, fleet: Fleet) -> None:
    site_objs = [{"name": s, "slug": s, "status": "active"} for s in fleet.sites]
    tenants = [{"name": name, "slug": slug, "description": "gpucloud demo tenant",
                "custom_fields": TENANT_QUOTAS} for slug, name in TENANTS]
    prefixes = [{"prefix": str(BMC_NET), "status": "container", "role": {"slug": "bmc"},
                 "description": "lab BMCs (Redfish emulators on loopback)"},
                {"prefix": str(MGMT_NET), "status": "container", "role": {"slug": "mgmt"},
                 "description": "lab host management"},
                {"prefix": str(LOOPBACK_NET), "status": "container", "role": {"slug": "underlay"},
                 "description": "switch loopbacks (router-id, VTEP)"},
                {"prefix": str(P2P_NET), "status": "container", "role": {"slug": "underlay"},
                 "description": "leaf-spine point-to-point /31s"}]
    reconcile(nb, [
        {"endpoint": "dcim/sites", "key": ["slug"], "objects": site_objs},
        {"endpoint": "tenancy/tenants", "key": ["slug"], "objects": tenants},
        {"endpoint": "ipam/prefixes", "key": ["prefix"], "objects": prefixes},
    ])
    site_ids = ids(nb, "dcim/sites", "slug")
    existing = ids(nb, "dcim/locations", "slug")
    nb.create("dcim/locations", [{"name": row, "slug": row, "site": site_ids[site], "status": "active"}
                                 for site, row in fleet.rows if row not in existing])
    loc_ids = ids(nb, "dcim/locations", "slug")
    have = ids(nb, "dcim/racks")
    create_parallel(nb, "dcim/racks", [
        {"name": rack, "site": site_ids[site], "location": loc_ids[row], "status": "active", "u_height": 42}
        for site, row, rack in fleet.racks if rack not in have])


def ensure_devices(nb: NetBox, fleet: Fleet) -> None:
    site_ids, loc_ids = ids(nb, "dcim/sites", "slug"), ids(nb, "dcim/locations", "slug")
    rack_ids = ids(nb, "dcim/racks")
    type_ids, role_ids = ids(nb, "dcim/device-types", "slug"), ids(nb, "dcim/device-roles", "slug")
    tenant_ids = ids(nb, "tenancy/tenants", "slug")
    have = ids(nb, "dcim/devices")
    new = [{"name": sw.name, "device_type": type_ids[sw.device_type], "role": role_ids[sw.role],
            "site": site_ids[sw.site], "location": loc_ids.get(sw.row), "status": "active",
            **({"custom_fields": {"bgp_asn": sw.asn}} if sw.asn else {})}
           for sw in fleet.switches if sw.name not in have]
    new += [{"name": s.name, "device_type": type_ids[s.device_type], "role": role_ids["gpu-server"],
             "site": site_ids[s.site], "location": loc_ids[s.row], "rack": rack_ids[s.rack],
             "position": s.position, "face": "front", "status": "active", "tenant": tenant_ids.get(s.tenant),
             "custom_fields": {"nvlink_domain": s.nvlink_domain, "ib_port_guids": [s.ib_guid],
                               "bmc_credential_ref": BMC_CREDENTIAL_REF}}
            for s in fleet.servers if s.name not in have]
    create_devices(nb, new)


def interface_ids(nb: NetBox) -> dict[tuple[str, str], dict]:
    rows = nb.list("dcim/interfaces", page_size=5000, fields="id,name,device,cable")
    return {(i["device"]["name"], i["name"]): i for i in rows}


def ensure_addresses(nb: NetBox, fleet: Fleet, ifaces: dict) -> None:
    have = {ip["address"] for net in (BMC_NET, MGMT_NET)
            for ip in nb.list("ipam/ip-addresses", page_size=5000, fields="id,address", parent=str(net))}
    new = []
    for s in fleet.servers:
        for address, iface, role in ((s.bmc_ip, "bmc", "BMC"), (s.mgmt_ip, "mgmt0", "management")):
            if address not in have:
                new.append({"address": address, "status": "active", "dns_name": f"{s.name}-{iface}.lab",
                            "assigned_object_type": "dcim.interface",
                            "assigned_object_id": ifaces[(s.name, iface)]["id"], "description": role})
    create_parallel(nb, "ipam/ip-addresses", new)
    by_address = {}
    for net in (BMC_NET, MGMT_NET):
        by_address.update(ids(nb, "ipam/ip-addresses", "address", parent=str(net)))
    devices = {d["name"]: d for d in nb.list("dcim/devices", page_size=5000, fields="id,name,primary_ip4,oob_ip",
                                             role="gpu-server")}
    patch = []
    for s in fleet.servers:
        dev = devices[s.name]
        if not dev.get("primary_ip4") or not dev.get("oob_ip"):
            patch.append({"id": dev["id"], "primary_ip4": by_address[s.mgmt_ip], "oob_ip": by_address[s.bmc_ip]})
    update_parallel(nb, "dcim/devices", patch)


def ensure_underlay(nb: NetBox, fleet: Fleet, ifaces: dict) -> None:
    """Per leaf and spine: custom field bgp_asn, interface lo (the device type's template makes it; a
    switch made before that gets one here), its loopback address, and the /31s on the uplinks."""
    planned = {sw.name: sw for sw in fleet.switches if sw.asn}
    devices = nb.list("dcim/devices", page_size=5000, fields="id,name,custom_fields", role=["leaf", "spine"])
    update_parallel(nb, "dcim/devices", [
        {"id": d["id"], "custom_fields": {"bgp_asn": planned[d["name"]].asn}} for d in devices
        if d["name"] in planned and (d.get("custom_fields") or {}).get("bgp_asn") is None])
    dev_ids = {d["name"]: d["id"] for d in devices}
    for made in create_parallel(nb, "dcim/interfaces", [
            {"device": dev_ids[name], "name": "lo", "type": "virtual"}
            for name in planned if (name, "lo") not in ifaces]):
        ifaces[(made["device"]["name"], "lo")] = made
    have = {ip["address"] for net in (LOOPBACK_NET, P2P_NET)
            for ip in nb.list("ipam/ip-addresses", page_size=5000, fields="id,address", parent=str(net))}
    wanted = [(sw.name, "lo", sw.loopback, "loopback") for sw in planned.values()]
    wanted += [(device, port, address, None) for device, port, address in fleet.p2p]
    create_parallel(nb, "ipam/ip-addresses", [
        {"address": address, "status": "active", "assigned_object_type": "dcim.interface",
         "assigned_object_id": ifaces[(device, port)]["id"], **({"role": role} if role else {}),
         "description": "loopback (router-id, VTEP)" if role else "underlay point-to-point"}
        for device, port, address, role in wanted if address not in have])


def ensure_cables(nb: NetBox, fleet: Fleet, ifaces: dict) -> None:
    def end(device, name):
        return [{"object_type": "dcim.interface", "object_id": ifaces[(device, name)]["id"]}]

    new = [{"a_terminations": end(a, ia), "b_terminations": end(b, ib), "status": "connected"}
           for a, ia, b, ib in fleet.cables if not ifaces[(a, ia)].get("cable")]
    create_parallel(nb, "dcim/cables", new)


def apply(nb: NetBox, fleet: Fleet, progress=print) -> None:
    ifaces: dict = {}
    steps = [("sites, rows, racks, tenants", lambda: ensure_places(nb, fleet)),
             ("devices and their interfaces", lambda: ensure_devices(nb, fleet)),
             ("interface index", lambda: ifaces.update(interface_ids(nb))),
             ("IP addresses", lambda: ensure_addresses(nb, fleet, ifaces)),
             ("underlay", lambda: ensure_underlay(nb, fleet, ifaces)),
             ("cables", lambda: ensure_cables(nb, fleet, ifaces))]
    for label, step in steps:
        started = time.monotonic()
        step()
        progress(f"  {label}: {time.monotonic() - started:.1f}s")
