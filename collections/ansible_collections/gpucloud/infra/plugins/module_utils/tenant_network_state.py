# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A tenant's networks: input, the pool, what NetBox holds, free values and the plan (tenant_network.py claims
and releases; this half reads). The model is described in tenant_network.py."""

from __future__ import annotations

import ipaddress
import re


GROUPS = "ipam/vlan-groups"
VLANS = "ipam/vlans"
VRFS = "ipam/vrfs"
PREFIXES = "ipam/prefixes"
RTS = "ipam/route-targets"
TENANTS = "tenancy/tenants"
POOL_ROLE = "tenant-pool"
MAX_TRIES = 64  # claims per value; each refusal removes one candidate, so this only bounds a pathological loop
MAX_NETWORKS = 64
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_NETWORK = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")
_HEX_RANGE = re.compile(r"^0x([0-9a-fA-F]{1,4})-0x([0-9a-fA-F]{1,4})$")
VLAN_NAME_MAX = 64  # NetBox's limit on a VLAN's name
NETWORK_NAME_MAX = 32  # the fabric config's limit on a tenant VLAN's name
L3VNI_NETWORK = "l3vni"  # <tenant>-l3vni is the tenant's L3VNI VLAN, so no network may take that name


class TenantNetworkError(Exception):
    """A problem with the input, a pool or NetBox's data; errors lists every one found."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or [message]


def _fail(errors: list[str]):
    raise TenantNetworkError("; ".join(errors), errors)


# -- input ------------------------------------------------------------------------------------------

def network_names(vlans) -> list[str]:
    """vlans: N gives net1..netN; a list gives the networks' names."""
    if isinstance(vlans, int) and not isinstance(vlans, bool):
        return [f"net{i}" for i in range(1, vlans + 1)]
    return [v["name"] if isinstance(v, dict) else v for v in vlans]


def validate(params: dict) -> list[str]:
    """Every problem with the module's input at once, each naming its field."""
    errors = []
    for field in ("tenant", "pool"):
        if not _SLUG.match(str(params.get(field) or "")):
            errors.append(f"{field}: expected a NetBox slug (lowercase letters, digits, '-', '_'), "
                          f"got {params.get(field)!r}")
        elif field == "tenant" and len(l3vni_vlan_name(params[field])) > VLAN_NAME_MAX:
            errors.append(f"tenant: the L3VNI VLAN name '{l3vni_vlan_name(params[field])}' exceeds {VLAN_NAME_MAX} "
                          "characters")
    length = params.get("prefix_length")
    if not isinstance(length, int) or isinstance(length, bool) or not 8 <= length <= 30:
        errors.append(f"prefix_length: expected an integer within 8-30, got {length!r}")
    if params.get("state", "present") == "present":
        errors += _validate_vlans(params.get("vlans"), str(params.get("tenant") or ""))
    return errors


def _validate_vlans(vlans, tenant: str) -> list[str]:
    if isinstance(vlans, int) and not isinstance(vlans, bool):
        ok = 1 <= vlans <= MAX_NETWORKS
        return [] if ok else [f"vlans: expected 1-{MAX_NETWORKS} networks, got {vlans}"]
    if not isinstance(vlans, list) or not vlans:
        return [f"vlans: expected a count (1-{MAX_NETWORKS}) or a list of networks like [{{name: compute}}], "
                f"got {vlans!r}"]
    errors, seen = [], set()
    if len(vlans) > MAX_NETWORKS:
        errors.append(f"vlans: at most {MAX_NETWORKS} networks, got {len(vlans)}")
    for i, item in enumerate(vlans):
        name = item.get("name") if isinstance(item, dict) else item
        extra = sorted(set(item) - {"name"}) if isinstance(item, dict) else []
        if extra:
            errors.append(f"vlans[{i}]: unknown key(s) {', '.join(extra)}; a network has only a name")
        if not isinstance(name, str) or not _NETWORK.match(name):
            errors.append(f"vlans[{i}].name: expected lowercase letters, digits and '-', got {name!r}")
        elif name in seen:
            errors.append(f"vlans[{i}].name: network {name!r} is listed twice")
        elif name == L3VNI_NETWORK:
            errors.append(f"vlans[{i}].name: {L3VNI_NETWORK!r} is reserved for the tenant's L3VNI VLAN")
        elif len(name) > NETWORK_NAME_MAX:
            errors.append(f"vlans[{i}].name: at most {NETWORK_NAME_MAX} characters, got {len(name)}")
        elif len(f"{tenant}-{name}") > VLAN_NAME_MAX:
            errors.append(f"vlans[{i}].name: the VLAN name '{tenant}-{name}' exceeds {VLAN_NAME_MAX} characters")
        seen.add(name)
    return errors


# -- the pool -------------------------------------------------------------------------------------

def _parse_range(text, hexadecimal=False):
    match = (_HEX_RANGE if hexadecimal else _RANGE).match(str(text or ""))
    if not match:
        return None
    low, high = (int(g, 16 if hexadecimal else 10) for g in match.groups())
    return (low, high) if low <= high else None


def load_pool(nb, slug: str, container: str | None = None) -> dict:
    """The pool's VLAN group, its ranges and its tenant prefix container; every problem at once."""
    groups = nb.list(GROUPS, slug=slug)
    if not groups:
        _fail([f"pool: no VLAN group with slug {slug!r} in NetBox"])
    group = groups[0]
    cf = group.get("custom_fields") or {}
    pool = {"slug": slug, "name": group["name"], "group_id": group["id"],
            "vids": [tuple(r) for r in group.get("vid_ranges") or []], "asn": cf.get("pool_evpn_asn"),
            "l3vni": _parse_range(cf.get("pool_l3vni")), "l2vni": _parse_range(cf.get("pool_l2vni")),
            "ib_pkey": _parse_range(cf.get("pool_ib_pkey"), hexadecimal=True)}
    errors = [f"pool {slug}: custom field pool_{key} is missing or not a range (got {cf.get('pool_' + key)!r})"
              for key in ("l3vni", "l2vni", "ib_pkey") if pool[key] is None]
    if not pool["vids"]:
        errors.append(f"pool {slug}: the VLAN group has no vid_ranges")
    if not isinstance(pool["asn"], int):
        errors.append(f"pool {slug}: custom field pool_evpn_asn is not set")
    errors += _fabric_limits(slug, pool)
    pool["container"] = _container(nb, group, container, errors)
    if errors:
        _fail(errors)
    return pool


# As fabric_config.RD_IP_MAX (not imported: this module ships without the renderers).
RD_NUMBER_MAX = 65535


def _fabric_limits(slug: str, pool: dict) -> list[str]:
    """What the fabric config would refuse later, refused before anything is allocated: leaf RDs are
    router-id:L3VNI (16 bits after the colon) and a 4-byte EVPN ASN leaves 16 bits for the VNI in a route target."""
    found = []
    if pool["l3vni"] and pool["l3vni"][1] > RD_NUMBER_MAX:
        found.append(f"pool {slug}: custom field pool_l3vni must end at most at {RD_NUMBER_MAX} "
                     f"(leaf RDs are router-id:L3VNI), got {pool['l3vni'][0]}-{pool['l3vni'][1]}")
    if isinstance(pool["asn"], int) and pool["asn"] > 65535 and pool["l2vni"] and pool["l2vni"][1] > 65535:
        found.append(f"pool {slug}: custom field pool_l2vni must end at most at 65535 with the 4-byte "
                     f"pool_evpn_asn {pool['asn']} (route targets are ASN:VNI)")
    return found


def _container(nb, group: dict, wanted: str | None, errors: list[str]) -> dict | None:
    """The container prefix tenant subnets are carved from: the one given, else the tenant-pool container
    the data model describes as 'tenant subnets of <group name>'."""
    found = nb.list(PREFIXES, status="container", role=POOL_ROLE, **({"prefix": wanted} if wanted else {}))
    if not wanted:
        found = [p for p in found if p.get("description") == f"tenant subnets of {group['name']}"]
    if len(found) != 1:
        what = (f"container prefix {wanted}" if wanted
                else f"container prefix described 'tenant subnets of {group['name']}'")
        errors.append(f"pool {group['slug']}: expected one {what} (status container, role {POOL_ROLE}), "
                      f"found {len(found)}")
        return None
    return {"id": found[0]["id"], "prefix": found[0]["prefix"]}


# -- what exists -------------------------------------------------------------------------------------

def _tenant(nb, slug: str) -> dict:
    found = nb.list(TENANTS, slug=slug)
    if not found:
        _fail([f"tenant: no tenant {slug!r} in NetBox"])
    return found[0]


def vrf_name(tenant: str) -> str:
    """The VRF's name in NetBox."""
    return f"gpucloud-{tenant}"


def device_vrf(l3vni: int | None) -> str | None:
    """The VRF's name on the switches: unique as the L3VNI is, and at most 15 characters (a Linux netdev)."""
    return f"vrf{l3vni}" if l3vni is not None else None


def l3vni_vlan_name(tenant: str) -> str:
    return f"{tenant}-{L3VNI_NETWORK}"


def _l3vni_vlan(state: dict) -> dict | None:
    name = l3vni_vlan_name(state["tenant"]["slug"])
    return next((v for v in state["vlans"] if v["name"] == name), None)


def _vrfs(nb, tenant: dict) -> list[dict]:
    return sorted(nb.list(VRFS, name=vrf_name(tenant["slug"]), tenant_id=tenant["id"]), key=lambda v: v["id"])


def _vlans(nb, pool: dict, tenant: dict) -> list[dict]:
    return nb.list(VLANS, group_id=pool["group_id"], tenant_id=tenant["id"])


def _prefixes(nb, pool: dict, tenant: dict) -> list[dict]:
    found = nb.list(PREFIXES, tenant_id=tenant["id"], within=pool["container"]["prefix"])
    return sorted(found, key=lambda p: p["id"])


def read_state(nb, pool: dict, tenant: dict) -> dict:
    """The tenant's objects in this pool as NetBox holds them now."""
    return {"tenant": tenant, "vrfs": _vrfs(nb, tenant), "vlans": _vlans(nb, pool, tenant),
            "prefixes": _prefixes(nb, pool, tenant)}


def _id(ref):
    return ref.get("id") if isinstance(ref, dict) else ref


def allocation(pool: dict, state: dict, names: list[str] | None = None) -> dict:
    """The allocation the fabric config (a tenant item of fabric_schema.INPUT) and ib_partition consume,
    from NetBox's objects."""
    tenant = state["tenant"]
    vrf = state["vrfs"][0] if state["vrfs"] else None
    by_vlan: dict = {}
    for prefix in state["prefixes"]:  # the VRF's prefix of a VLAN, else its reservation (lowest id first)
        key = _id(prefix.get("vlan"))
        if (prefix.get("vrf") and vrf and _id(prefix["vrf"]) == vrf["id"]) or key not in by_vlan:
            by_vlan[key] = prefix
    prefix_of_tenant = f"{tenant['slug']}-"
    l3vni_vlan = _l3vni_vlan(state)
    vlans = []
    for vlan in sorted(state["vlans"], key=lambda v: v["vid"]):
        if vlan is l3vni_vlan:
            continue
        network = vlan["name"][len(prefix_of_tenant):] if vlan["name"].startswith(prefix_of_tenant) else vlan["name"]
        if names is not None and network not in names:
            continue
        prefix = by_vlan.get(vlan["id"])
        net = ipaddress.ip_network(prefix["prefix"]) if prefix else None
        vlans.append({"name": network, "vid": vlan["vid"], "l2vni": (vlan.get("custom_fields") or {}).get("l2vni"),
                      "prefix": str(net) if net else None, "gateway": gateway(net)})
    rts = {"import": sorted(rt["name"] for rt in vrf.get("import_targets") or []) if vrf else [],
           "export": sorted(rt["name"] for rt in vrf.get("export_targets") or []) if vrf else []}
    l3vni = (vrf.get("custom_fields") or {}).get("l3vni") if vrf else None
    return {"tenant": tenant["slug"], "vrf": device_vrf(l3vni), "rd": vrf.get("rd") if vrf else None,
            "route_targets": rts, "l3vni": l3vni, "l3vni_vid": l3vni_vlan["vid"] if l3vni_vlan else None,
            "vlans": sorted(vlans, key=lambda v: names.index(v["name"])) if names else vlans,
            "ib_pkey": (tenant.get("custom_fields") or {}).get("ib_pkey")}


def gateway(net) -> str | None:
    """A network's gateway: its first address, bare (the fabric config takes the length from the prefix)."""
    return str(net.network_address + 1) if net else None


# -- free values -------------------------------------------------------------------------------------

def _values(ranges) -> set[int]:
    return {v for low, high in ranges for v in range(low, high + 1)}


def _range_text(ranges, hexadecimal=False) -> str:
    fmt = (lambda v: f"0x{v:04x}") if hexadecimal else str
    return ", ".join(f"{fmt(low)}-{fmt(high)}" for low, high in ranges)


def free_values(nb, pool: dict) -> dict:
    """Per resource: the pool's values not in use, and how many are in use."""
    used = {
        "vid": {v["vid"] for v in nb.list(VLANS, group_id=pool["group_id"], fields="id,vid")},
        "l2vni": {(v.get("custom_fields") or {}).get("l2vni") for v in nb.list(VLANS, fields="id,custom_fields")},
        "l3vni": {(v.get("custom_fields") or {}).get("l3vni") for v in nb.list(VRFS, fields="id,custom_fields")},
        "ib_pkey": {int(t["custom_fields"]["ib_pkey"], 16) for t in nb.list(TENANTS, fields="id,custom_fields")
                    if (t.get("custom_fields") or {}).get("ib_pkey")},
    }
    ranges = {"vid": pool["vids"], "l2vni": [pool["l2vni"]], "l3vni": [pool["l3vni"]], "ib_pkey": [pool["ib_pkey"]]}
    out = {}
    for key, rng in ranges.items():
        values = _values(rng)
        out[key] = {"free": values - used[key], "in_use": len(values & used[key]),
                    "range": _range_text(rng, hexadecimal=key == "ib_pkey")}
    return out


LABELS = {"vid": "VLAN ID", "l2vni": "L2VNI", "l3vni": "L3VNI", "ib_pkey": "IB partition key"}


def exhausted(pool: dict, key: str, free: dict) -> str:
    return (f"pool {pool['slug']}: no free {LABELS[key]} in {free[key]['range']} "
            f"({free[key]['in_use']} in use)")


def _prefix_slots(nb, pool: dict, length: int) -> tuple[int, list[str]]:
    """How many /length prefixes the container still has room for, and the first few (check mode shows them)."""
    blocks = nb.get(f"{PREFIXES}/{pool['container']['id']}/available-prefixes")
    slots, first = 0, []
    for block in blocks:
        net = ipaddress.ip_network(block["prefix"])
        if net.prefixlen <= length:
            slots += 2 ** (length - net.prefixlen)
            first.extend(str(s) for s in _take(net.subnets(new_prefix=length), MAX_NETWORKS - len(first)))
    return slots, first


def _take(iterator, n):
    out = []
    for item in iterator:
        if len(out) >= n:
            break
        out.append(item)
    return out


def _missing(state: dict, names: list[str]) -> tuple[list[str], bool, int]:
    """(networks without a VLAN, whether the L3VNI VLAN is missing, how many prefixes are missing)."""
    have = {v["name"] for v in state["vlans"]}
    missing_vlans = [n for n in names if f"{state['tenant']['slug']}-{n}" not in have]
    with_prefix = {_id(p.get("vlan")) for p in state["prefixes"] if not p.get("vrf")}
    missing_prefixes = len(missing_vlans) + sum(
        1 for v in state["vlans"] if v["id"] not in with_prefix and _network(state, v) in names)
    return missing_vlans, _l3vni_vlan(state) is None, missing_prefixes


def _plan(nb, pool: dict, state: dict, names: list[str], length: int) -> dict:
    """What is missing and whether the pools can provide it; every exhausted pool at once, before any write."""
    missing_vlans, missing_l3vni_vlan, missing_prefixes = _missing(state, names)
    need = {"l3vni": 0 if state["vrfs"] else 1, "vid": len(missing_vlans) + missing_l3vni_vlan,
            "l2vni": len(missing_vlans),
            "ib_pkey": 0 if (state["tenant"].get("custom_fields") or {}).get("ib_pkey") else 1}
    free = free_values(nb, pool)
    errors = [exhausted(pool, key, free) if not free[key]["free"] else
              f"pool {pool['slug']}: only {len(free[key]['free'])} free {LABELS[key]} in {free[key]['range']} "
              f"({free[key]['in_use']} in use), {count} needed"
              for key, count in need.items() if count > len(free[key]["free"])]
    slots, first = _prefix_slots(nb, pool, length)
    if missing_prefixes > slots:
        errors.append(f"pool {pool['slug']}: no room for {missing_prefixes} /{length} prefix(es) in "
                      f"{pool['container']['prefix']} ({slots} free)")
    if errors:
        _fail(errors)
    return {"missing_vlans": missing_vlans, "missing_l3vni_vlan": missing_l3vni_vlan,
            "missing_prefixes": missing_prefixes, "free": free, "first_prefixes": first}


def _network(state: dict, vlan: dict) -> str:
    head = f"{state['tenant']['slug']}-"
    return vlan["name"][len(head):] if vlan["name"].startswith(head) else vlan["name"]
