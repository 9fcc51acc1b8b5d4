# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The fabric config's inputs (fabric_schema.INPUT), read from NetBox.

fabric: the pool's VLAN group gives evpn_asn (pool_evpn_asn), the anycast gateway MAC and the VXLAN
port (fabric_anycast_gateway_mac, fabric_vxlan_udp_port); each switch gives its ASN (custom field
bgp_asn), its router-id and VTEP (the IP address with role loopback, on interface lo) and its uplinks
(a cable between two fabric switches whose interfaces both hold an IPv4 address; the peer's address
and ASN come from the far end).
tenants: every tenant holding an allocation in the pool, exactly as tenant_network returns it.
attachments: every interface of a tenant's device cabled to one of the switches; the VLAN is the
device interface's untagged VLAN when that is one of the tenant's networks, else the tenant's first
network (the first allocated).

"Fabric switches" are the devices with a fabric role (leaf, spine) at the sites of the switches asked
for, so a leaf read alone still learns its spines' addresses and ASNs. Everything comes from a few
bulk queries with `fields=` (no per-device or per-tenant calls); id filters go in chunks to keep URLs
short. Read-only.
"""

from __future__ import annotations

import ipaddress
import re
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_schema
from ansible_collections.gpucloud.infra.plugins.module_utils import tenant_network as tn
from ansible_collections.gpucloud.infra.plugins.module_utils.datamodel import (
    DEFAULT_ANYCAST_GATEWAY_MAC,
    DEFAULT_VXLAN_UDP_PORT,
)

DEVICES = "dcim/devices"
INTERFACES = "dcim/interfaces"
CABLES = "dcim/cables"
ADDRESSES = "ipam/ip-addresses"
FABRIC_ROLES = ["leaf", "spine"]
DEFAULT_PLATFORM = "linux"
# NetBox platform slug -> renderer, for switches whose device has a platform; a slug that is not
# listed is taken as the renderer's name.
DEFAULT_PLATFORM_MAP = {"linux-leaf": "linux"}
ID_CHUNK = 200  # ids per filtered query
PAGE = 1000
# Independent queries go side by side: NetBox answers each in 0.1-0.4 s, mostly serialisation.
PARALLEL = 4
VLAN_MODES = ["access", "tagged", "tagged-all"]  # the modes under which NetBox keeps an untagged VLAN


class FabricInputsError(Exception):
    """Bad parameters or NetBox data the inputs cannot be built from; errors lists every one."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _id(ref):
    return ref.get("id") if isinstance(ref, dict) else ref


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


def _chunks(values) -> list[list]:
    values = sorted(set(values))
    return [values[i:i + ID_CHUNK] for i in range(0, len(values), ID_CHUNK)]


def by_ids(nb, endpoint: str, key: str, ids, **params) -> list[dict]:
    chunks = _chunks(ids)
    if len(chunks) <= 1:
        return [obj for chunk in chunks for obj in nb.list(endpoint, page_size=PAGE, **{key: chunk}, **params)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        pages = pool.map(lambda chunk: nb.list(endpoint, page_size=PAGE, **{key: chunk}, **params), chunks)
        return [obj for page in pages for obj in page]


def validate(params: dict) -> list[str]:
    """Every problem with the parameters at once, each naming its field."""
    errors = []
    if not params.get("site") and not params.get("switches"):
        errors.append("site: give a site (its leaves and spines are read) or switches (device names)")
    if params.get("vrf_backend", "device") not in fabric_schema.BACKENDS:
        errors.append(f"vrf_backend: expected one of {', '.join(fabric_schema.BACKENDS)}, "
                      f"got {params.get('vrf_backend')!r}")
    if not re.match(fabric_schema.NAME, str(params.get("platform") or DEFAULT_PLATFORM)):
        errors.append(f"platform: expected a renderer name like linux, got {params.get('platform')!r}")
    roles = params.get("roles", FABRIC_ROLES)
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
        errors.append(f"roles: expected a list of device role slugs, got {roles!r}")
    return errors


# -- the switches and their underlay ------------------------------------------------------------------

SWITCH_FIELDS = "id,name,site,platform,custom_fields"


def _switches(nb, site: str | None, names: list[str] | None, roles: list[str]):
    """(the switches asked for, every fabric switch of their sites, errors); switches as {name: device}."""
    errors: list[str] = []
    if names:
        found = {d["name"]: d for d in by_ids(nb, DEVICES, "name", names, fields=SWITCH_FIELDS)}
        errors += [f"switches: no device {n!r} in NetBox" for n in names if n not in found]
        if site:
            errors += [f"switches: {n} is at site {found[n]['site']['slug']}, not {site}"
                       for n in names if n in found and found[n]["site"]["slug"] != site]
        wanted = {n: found[n] for n in names if n in found}
    else:
        wanted = {d["name"]: d for d in nb.list(DEVICES, page_size=PAGE, site=site, role=roles,
                                                fields=SWITCH_FIELDS)}
        if not wanted:
            errors.append(f"site: no device with role {' or '.join(roles)} at site {site!r}")
        return wanted, wanted, errors
    sites = sorted({d["site"]["id"] for d in wanted.values()})
    fabric = {d["name"]: d for d in nb.list(DEVICES, page_size=PAGE, site_id=sites, role=roles,
                                            fields=SWITCH_FIELDS)} if sites else {}
    return wanted, {**fabric, **wanted}, errors


def _addresses(nb, fabric: dict) -> dict[int, list[dict]]:
    """The fabric switches' IPv4 addresses per interface id."""
    out: dict[int, list[dict]] = {}
    for ip in by_ids(nb, ADDRESSES, "device_id", [d["id"] for d in fabric.values()], family=4,
                      fields="id,address,role,assigned_object_type,assigned_object_id,assigned_object"):
        if ip.get("assigned_object_type") == "dcim.interface":
            out.setdefault(ip["assigned_object_id"], []).append(ip)
    return out


def _role(ip: dict):
    role = ip.get("role")
    return role.get("value") if isinstance(role, dict) else role


def _loopbacks(addresses: dict) -> dict[str, list[str]]:
    """Per switch name its addresses with role loopback."""
    out: dict[str, list[str]] = {}
    for ips in addresses.values():
        for ip in ips:
            device = ((ip.get("assigned_object") or {}).get("device") or {}).get("name")
            if _role(ip) == "loopback" and device:
                out.setdefault(device, []).append(ip["address"])
    return out


def _ends(cable: dict) -> tuple[list[dict], list[dict]]:
    """The interface terminations of a cable's two sides."""
    def side(terms):
        return [t["object"] for t in terms or [] if t.get("object_type") == "dcim.interface" and t.get("object")]
    return side(cable.get("a_terminations")), side(cable.get("b_terminations"))


def cables_of(nb, wanted: dict) -> list[tuple[dict, dict]]:
    """(switch interface, far interface) for every connected cable on a wanted switch; each an interface
    as a cable termination holds it ({id, name, device{id, name}})."""
    ids = {d["id"] for d in wanted.values()}
    cables = {c["id"]: c for c in by_ids(nb, CABLES, "device_id", ids, status="connected",
                                          fields="id,a_terminations,b_terminations")}
    pairs = []
    for cable in cables.values():
        a_side, b_side = _ends(cable)
        if len(a_side) != 1 or len(b_side) != 1:
            continue  # breakouts and patch panels carry no point-to-point link or access port
        for near, far in ((a_side[0], b_side[0]), (b_side[0], a_side[0])):
            if _id(near.get("device")) in ids:
                pairs.append((near, far))
    return pairs


def _one_address(where: str, ips: list[dict], errors: list[str]) -> str | None:
    plain = sorted(ip["address"] for ip in ips if _role(ip) != "loopback")
    if len(plain) > 1:
        errors.append(f"{where}: expected one IPv4 address on a point-to-point uplink, found {', '.join(plain)}")
    return plain[0] if plain else None


def _uplink(near: dict, far: dict, local: str, peer: str, peer_asn, errors: list[str]) -> dict | None:
    where = f"{near['device']['name']} {near['name']}"
    mine, theirs = ipaddress.ip_interface(local), ipaddress.ip_interface(peer)
    if theirs.ip not in mine.network or mine.ip == theirs.ip:
        errors.append(f"{where}: {local} and the peer's {peer} ({far['device']['name']} {far['name']}) "
                      "are not two addresses of one subnet")
        return None
    if not isinstance(peer_asn, int):
        errors.append(f"{where}: peer {far['device']['name']} has no custom field bgp_asn")
        return None
    return {"interface": near["name"], "ip_address": local, "peer_ip": str(theirs.ip), "peer_asn": peer_asn}


def _platform(device: dict, default: str, mapping: dict) -> str:
    slug = (device.get("platform") or {}).get("slug")
    return mapping.get(slug, slug) if slug else default


def _switch_entry(name: str, device: dict, loopbacks: list[str], uplinks: list[dict], platform: str,
                  errors: list[str]) -> dict:
    asn = (device.get("custom_fields") or {}).get("bgp_asn")
    if not isinstance(asn, int):
        errors.append(f"{name}: custom field bgp_asn is not set")
    if len(loopbacks) != 1:
        errors.append(f"{name}: expected one IP address with role loopback (router-id and VTEP, on interface lo), "
                      f"found {len(loopbacks)}{': ' + ', '.join(sorted(loopbacks)) if loopbacks else ''}")
    router_id = str(ipaddress.ip_interface(sorted(loopbacks)[0]).ip) if loopbacks else None
    return {"platform": platform, "asn": asn, "router_id": router_id, "vtep_ip": router_id,
            "uplinks": sorted(uplinks, key=lambda u: _natural(u["interface"]))}


# -- tenants --------------------------------------------------------------------------------------------

def _states(objects: dict) -> dict[int, dict]:
    """tenant_network.read_state for every tenant with a VRF, from four bulk queries instead of three per
    tenant: tenant id -> {tenant, vrfs, vlans, prefixes}."""
    tenants = {t["id"]: t for t in objects["tenants"]}
    states: dict[int, dict] = {}
    for vrf in objects["vrfs"]:
        tenant = tenants.get(_id(vrf.get("tenant")))
        if tenant and vrf["name"] == tn.vrf_name(tenant["slug"]):
            states.setdefault(tenant["id"], {"tenant": tenant, "vrfs": [], "vlans": [], "prefixes": []})
            states[tenant["id"]]["vrfs"].append(vrf)
    for vlan in objects["vlans"]:
        if _id(vlan.get("tenant")) in states:
            states[_id(vlan["tenant"])]["vlans"].append(vlan)
    for prefix in objects["prefixes"]:
        if _id(prefix.get("tenant")) in states:
            states[_id(prefix["tenant"])]["prefixes"].append(prefix)
    for state in states.values():
        state["vrfs"].sort(key=lambda v: v["id"])
        state["prefixes"].sort(key=lambda p: p["id"])
    return states


# -- attachments ----------------------------------------------------------------------------------------

def _devices(nb, device_ids) -> dict[int, dict]:
    return {d["id"]: d for d in by_ids(nb, DEVICES, "id", device_ids, fields="id,name,tenant")}


def _untagged(nb, device_ids) -> dict[int, int]:
    """Interface id -> untagged VLAN id, for the interfaces of these devices that have one."""
    return {i["id"]: _id(i["untagged_vlan"]) for i in by_ids(nb, INTERFACES, "device_id", device_ids,
                                                               mode=VLAN_MODES, fields="id,untagged_vlan")
            if i.get("untagged_vlan")}


def _vlan_names(allocations: dict[int, dict], states: dict[int, dict]) -> dict[int, dict]:
    """tenant id -> {NetBox VLAN id: network name} of the tenant's networks."""
    out = {}
    for tenant_id, alloc in allocations.items():
        networks = {v["name"] for v in alloc["vlans"]}
        prefix = f"{alloc['tenant']}-"
        out[tenant_id] = {v["id"]: v["name"].removeprefix(prefix) for v in states[tenant_id]["vlans"]
                          if v["name"].removeprefix(prefix) in networks}
    return out


def _attachment_vlan(alloc: dict, networks: dict, untagged, port: str, warnings: list[str]) -> str:
    first = alloc["vlans"][0]["name"]
    if untagged is None:
        return first
    if untagged not in networks:
        warnings.append(f"{port}: the untagged VLAN (id {untagged}) is not a network of tenant {alloc['tenant']}; "
                        f"using its first network {first}")
        return first
    return networks[untagged]


def _attachments(access: list[tuple[dict, dict]], devices: dict[int, dict], untagged: dict[int, int],
                 allocations: dict[int, dict], vlan_names: dict[int, dict]) -> tuple[list, list, list]:
    """(attachments, skipped, warnings) for the access cables: (switch interface, device interface) pairs."""
    attachments, skipped, warnings = [], {}, []
    for near, far in access:
        device = devices.get(_id(far["device"])) or {}
        tenant_id = _id(device.get("tenant"))
        if tenant_id is None:
            continue  # a free server (or not a tenant's device): no access port
        port = f"{near['device']['name']} {near['name']} ({device['name']} {far['name']})"
        alloc = allocations.get(tenant_id)
        if alloc is None:
            skipped.setdefault(device["tenant"]["slug"], []).append(port)
            continue
        vlan = _attachment_vlan(alloc, vlan_names[tenant_id], untagged.get(far["id"]), port, warnings)
        attachments.append({"switch": near["device"]["name"], "interface": near["name"], "tenant": alloc["tenant"],
                            "vlan": vlan})
    attachments.sort(key=lambda a: (a["switch"], _natural(a["interface"])))
    return attachments, [{"tenant": t, "reason": "no allocation in the pool (run tenant_network)", "ports": ps}
                         for t, ps in sorted(skipped.items())], warnings


# -- all of it --------------------------------------------------------------------------------------------

def _fabric_settings(pool: dict, group: list[dict]) -> tuple[dict, list[str]]:
    cf = (group[0] if group else {}).get("custom_fields") or {}
    mac = str(cf.get("fabric_anycast_gateway_mac") or DEFAULT_ANYCAST_GATEWAY_MAC).lower()
    port = cf.get("fabric_vxlan_udp_port") or DEFAULT_VXLAN_UDP_PORT
    errors = []
    if not re.match(fabric_schema.MAC["pattern"], mac):
        errors.append(f"pool {pool['slug']}: custom field fabric_anycast_gateway_mac {mac!r} is not a MAC address")
    return {"evpn_asn": pool["asn"], "anycast_gateway_mac": mac, "vxlan_udp_port": port}, errors


def _load_pool(nb, slug: str) -> tuple[dict | None, list[str]]:
    try:
        return tn.load_pool(nb, slug), []
    except tn.TenantNetworkError as exc:
        return None, exc.errors


def _networks(state: dict) -> list[str]:
    """The tenant's network names in the order they were allocated (tenant_network creates the VLANs in the order
    the networks are listed), so the allocation lists them as tenant_network returned it."""
    prefix, l3vni = f"{state['tenant']['slug']}-", tn.l3vni_vlan_name(state["tenant"]["slug"])
    return [v["name"].removeprefix(prefix) for v in sorted(state["vlans"], key=lambda v: v["id"])
            if v["name"] != l3vni]


def _allocations(states: dict[int, dict], pool: dict) -> tuple[dict[int, dict], list[dict]]:
    """(tenant id -> allocation, for the complete ones; [{tenant, reason, ports}] for the others)."""
    allocations, incomplete = {}, []
    for tenant_id, state in states.items():
        alloc = tn.allocation(pool, state, _networks(state))
        problems = fabric_schema.errors(alloc, fabric_schema.TENANT)
        if problems:
            incomplete.append({"tenant": alloc["tenant"], "ports": [],
                               "reason": "incomplete allocation (re-run tenant_network): " + "; ".join(problems)})
        else:
            allocations[tenant_id] = alloc
    return allocations, incomplete


def _tenant_queries(runner, nb, pool: dict) -> dict:
    """The tenants and the pool's VRFs, VLANs and prefixes (futures)."""
    queries = {
        "tenants": (tn.TENANTS, {"fields": "id,slug,name,custom_fields"}),
        "vrfs": (tn.VRFS, {"name__isw": tn.vrf_name(""),
                           "fields": "id,name,rd,tenant,custom_fields,import_targets,export_targets"}),
        "vlans": (tn.VLANS, {"group_id": pool["group_id"], "fields": "id,name,vid,tenant,custom_fields"}),
        "prefixes": (tn.PREFIXES, {"within": pool["container"]["prefix"], "fields": "id,prefix,vrf,vlan,tenant"}),
    }
    return {key: runner.submit(nb.list, endpoint, page_size=PAGE, **params)
            for key, (endpoint, params) in queries.items()}


def read(nb, site: str | None = None, switches: list[str] | None = None, pool: str = "tenant-fabric",
         vrf_backend: str = "device", platform: str = DEFAULT_PLATFORM, platform_map: dict | None = None,
         roles: list[str] | None = None, exclude_tenants: list[str] | None = None) -> dict:
    """{inputs, left_out, warnings}; FabricInputsError with every problem found.

    exclude_tenants are left out as if they held nothing: a tenant being released is taken off the switches
    before its networks go back to the pools."""
    roles = FABRIC_ROLES if roles is None else roles
    errors = validate({"site": site, "switches": switches, "vrf_backend": vrf_backend, "platform": platform,
                       "roles": roles})
    if errors:
        raise FabricInputsError(errors)
    mapping = {**DEFAULT_PLATFORM_MAP, **(platform_map or {})}
    with ThreadPoolExecutor(PARALLEL) as runner:
        loading = runner.submit(_load_pool, nb, pool)
        group = runner.submit(nb.list, tn.GROUPS, slug=pool, fields="id,custom_fields")
        wanted, fabric, errors = _switches(nb, site, switches, roles)
        loaded, pool_errors = loading.result()
        settings, setting_errors = _fabric_settings(loaded, group.result()) if loaded else ({}, [])
        errors = pool_errors + setting_errors + errors
        if errors:
            raise FabricInputsError(errors)
        tenant_objects = _tenant_queries(runner, nb, loaded)
        addresses, cables = runner.submit(_addresses, nb, fabric), runner.submit(cables_of, nb, wanted)
        entries, access = _underlay(wanted, fabric, addresses.result(), cables.result(), platform, mapping, errors)
        if errors:
            raise FabricInputsError(errors)
        peers = {_id(far["device"]) for _near, far in access}
        devices, untagged = runner.submit(_devices, nb, peers), runner.submit(_untagged, nb, peers)
        states = _states({key: future.result() for key, future in tenant_objects.items()})
        allocations, incomplete = _allocations(states, loaded)
        excluded = set(exclude_tenants or [])
        allocations = {k: a for k, a in allocations.items() if a["tenant"] not in excluded}
        incomplete = [i for i in incomplete if i["tenant"] not in excluded]
        attachments, skipped, warnings = _attachments(access, devices.result(), untagged.result(), allocations,
                                                      _vlan_names(allocations, states))
    inputs = {"fabric": {"name": site or pool, **settings, "vrf_backend": vrf_backend,
                         "switches": dict(sorted(entries.items()))},
              "tenants": sorted(allocations.values(), key=lambda t: t["tenant"]),
              "attachments": attachments}
    return {"inputs": inputs, "left_out": incomplete + skipped, "warnings": warnings}


def _underlay(wanted: dict, fabric: dict, addresses: dict, pairs: list[tuple[dict, dict]], platform: str,
              mapping: dict, errors: list[str]) -> tuple[dict, list[tuple[dict, dict]]]:
    """(fabric.switches entries of the wanted switches, the access cables: (switch port, device port))."""
    fabric_ids = {d["id"]: name for name, d in fabric.items()}
    uplinks: dict[str, list[dict]] = {name: [] for name in wanted}
    access = []
    for near, far in pairs:
        if _id(far.get("device")) not in fabric_ids:
            access.append((near, far))
            continue
        local = _one_address(f"{near['device']['name']} {near['name']}", addresses.get(near["id"], []), errors)
        peer = _one_address(f"{far['device']['name']} {far['name']}", addresses.get(far["id"], []), errors)
        if local and peer:
            peer_asn = (fabric[fabric_ids[_id(far["device"])]].get("custom_fields") or {}).get("bgp_asn")
            link = _uplink(near, far, local, peer, peer_asn, errors)
            if link:
                uplinks[near["device"]["name"]].append(link)
        elif local or peer:
            errors.append(f"{near['device']['name']} {near['name']} - {far['device']['name']} {far['name']}: "
                          "only one end of the switch-to-switch cable has an IPv4 address")
    loopbacks = _loopbacks(addresses)
    entries = {name: _switch_entry(name, device, loopbacks.get(name, []), uplinks[name],
                                   _platform(device, platform, mapping), errors)
               for name, device in wanted.items()}
    return entries, access
