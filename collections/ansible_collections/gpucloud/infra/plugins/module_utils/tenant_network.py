# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A tenant's networks, allocated from the pools of a fabric's VLAN group in NetBox.

Per tenant: one VRF (gpucloud-<tenant>, RD and route targets <evpn_asn>:<l3vni>, custom field l3vni),
one VLAN per network in the pool's VLAN group (VID from its vid_ranges, custom field l2vni, name
<tenant>-<network>), one VLAN <tenant>-l3vni in the same group (the VID SONiC maps the L3VNI through),
one prefix per network VLAN carved from the pool's tenant prefix container, and the tenant's ib_pkey.
Read first, allocate only what is missing: a tenant keeps its allocation.

The allocation returned is a tenant item of the fabric config's input (fabric_schema.TENANT) as is:
route_targets {import, export}, gateway a bare address (the length is the prefix's), l3vni_vid, and
vrf the switch-side VRF name vrf<l3vni> (Linux netdev names hold 15 characters, too few for
gpucloud-<tenant>, the VRF's name in NetBox).

NetBox has no transaction across API calls, so NetBox's own uniqueness is the arbiter between
concurrent allocators: VLAN (group, VID) and (group, name), VRF RD, the unique custom fields l3vni,
l2vni and ib_pkey. An allocator picks a random free value, creates, and on a uniqueness refusal
(HTTP 400 naming it) drops that value and tries another. Prefixes come from NetBox's
available-prefixes endpoint, which NetBox serialises with an advisory lock. Two runs for the same
tenant converge: VLAN names are unique in the group (the loser adopts the winner's VLAN), and
duplicate VRFs or prefixes are resolved to the lowest id (the others deleted) after creating and
again at the end of every run.
"""

from __future__ import annotations

import ipaddress
import random

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError
from ansible_collections.gpucloud.infra.plugins.module_utils.tenant_network_state import (
    GROUPS,
    L3VNI_NETWORK,
    MAX_TRIES,
    PREFIXES,
    RTS,
    TENANTS,
    TenantNetworkError,
    VLANS,
    VRFS,
    _fail,
    _id,
    _missing,
    _network,
    _parse_range,
    _plan,
    _prefixes,
    _tenant,
    _vlans,
    _vrfs,
    allocation,
    device_vrf,
    exhausted,
    free_values,
    gateway,
    l3vni_vlan_name,
    load_pool,
    network_names,
    read_state,
    validate,
    vrf_name,
)

# What callers use (runner_api.onboarding, fabric_inputs, the lab, the tests): the reading half is re-exported.
__all__ = [
    "GROUPS", "PREFIXES", "TENANTS", "VLANS", "VRFS", "TenantNetworkError", "_parse_range", "absent", "allocation",
    "device_vrf", "free_values", "gateway", "l3vni_vlan_name", "load_pool", "network_names", "present", "read_state",
    "validate", "vrf_name",
]

_rng = random.SystemRandom()


# -- claiming values: create, and on NetBox's uniqueness refusal try another -----------------------------

# Which value NetBox refuses, by the words of its message: its validation (400) or, when two requests pass
# validation at the same time, the database's unique constraint (500 IntegrityError, "Key (rd)=...").
CONFLICTS = {"l2vni": ("'l2vni'",), "l3vni": ("'l3vni'", "route distinguisher", "(rd)="),
             "vid": ("VLAN ID", ", vid)="), "ib_pkey": ("'ib_pkey'",)}
NAME_TAKEN = ("Group and Name", ", name)=")


def _refused(exc: NetBoxError) -> set[str]:
    if exc.status not in (400, 500):
        return set()
    return {key for key, words in CONFLICTS.items() if any(w in str(exc) for w in words)}


def _name_taken(exc: NetBoxError) -> bool:
    return exc.status in (400, 500) and any(w in str(exc) for w in NAME_TAKEN)


def _refill(run, free: dict, key: str) -> bool:
    """Racers yield values to each other, so a value this run gave up may be free again: when the run's own view
    of a pool runs dry, NetBox is asked once more before the pool is called exhausted."""
    if run is None or free[key].get("refilled"):
        return False
    fresh = free_values(run.nb, run.pool)[key]
    free[key].update(free=fresh["free"], in_use=fresh["in_use"], refilled=True)
    return bool(fresh["free"])


def _settle(pool: dict, free: dict, key: str, value: int, holders, own_id: int, repatch, run=None) -> int:
    """The post-commit check for a unique custom field, which NetBox validates before the insert but no
    database constraint backs: two racers can both pass. Each claimant looks after its own commit and yields
    (takes another value) if anyone else holds its value. The racer that commits last always sees the other,
    so a duplicate never survives; at worst both yield and pick again."""
    for _ in range(MAX_TRIES):
        if not [i for i in holders(value) if i != own_id]:
            return value
        free[key]["free"].discard(value)
        free[key]["in_use"] += 1
        if not free[key]["free"] and not _refill(run, free, key):
            _fail([exhausted(pool, key, free)])
        value = _rng.choice(sorted(free[key]["free"]))
        try:
            repatch(value)
        except NetBoxError as exc:
            if key not in _refused(exc):
                raise
    _fail([f"pool {pool['slug']}: gave up after {MAX_TRIES} contested claims of {key}"])


def _claim(pool: dict, free: dict, keys: tuple[str, ...], attempt, run=None):
    """Call attempt(values) with random free values of keys until NetBox accepts; refused values are dropped."""
    for _ in range(MAX_TRIES):
        for key in keys:
            if not free[key]["free"] and not _refill(run, free, key):
                _fail([exhausted(pool, key, free)])
        values = {key: _rng.choice(sorted(free[key]["free"])) for key in keys}
        try:
            result = attempt(values)
        except NetBoxError as exc:
            refused = _refused(exc) & set(keys)
            if not refused:
                raise
            for key in refused:  # taken by someone else meanwhile: never offer it again in this run
                free[key]["free"].discard(values[key])
                free[key]["in_use"] += 1
            continue
        for key in keys:
            free[key]["free"].discard(values[key])
        return result
    _fail([f"pool {pool['slug']}: gave up after {MAX_TRIES} refused claims of {', '.join(keys)}"])


# -- present -------------------------------------------------------------------------------------------

class _Run:
    """One allocation run: the NetBox client, the pool, and what this run created (for the rollback)."""

    def __init__(self, nb, pool: dict, tenant: dict, length: int):
        self.nb, self.pool, self.tenant, self.length = nb, pool, tenant, length
        self.created: list[tuple[str, int]] = []

    def create(self, endpoint: str, body: dict) -> dict:
        obj = self.nb.create(endpoint, [body])[0]
        self.created.append((endpoint, obj["id"]))
        return obj

    def rollback(self) -> list[str]:
        """Delete what this run created, newest first; returns what could not be deleted."""
        left = []
        for endpoint, oid in reversed(self.created):
            try:
                self.nb.request("DELETE", f"{endpoint}/{oid}")
            except NetBoxError as exc:
                if exc.status != 404:
                    left.append(f"{endpoint}/{oid} ({exc})")
        return left


def _ensure_vrf(run: _Run, free: dict) -> dict:
    nb, pool, tenant = run.nb, run.pool, run.tenant
    vrfs = _vrfs(nb, tenant)
    if not vrfs:
        def attempt(values):
            l3vni = values["l3vni"]
            return run.create(VRFS, {"name": vrf_name(tenant["slug"]), "tenant": tenant["id"],
                                     "rd": f"{pool['asn']}:{l3vni}", "enforce_unique": True,
                                     "description": f"gpucloud tenant VRF ({pool['slug']})",
                                     "custom_fields": {"l3vni": l3vni}})
        vrf = _claim(pool, free, ("l3vni",), attempt, run)
        _settle(pool, free, "l3vni", vrf["custom_fields"]["l3vni"],
                lambda v: [x["id"] for x in nb.list(VRFS, cf_l3vni=v, fields="id")], vrf["id"],
                lambda v: nb.update(VRFS, [{"id": vrf["id"], "rd": f"{pool['asn']}:{v}",
                                            "custom_fields": {"l3vni": v}}]), run)
        vrfs = _dedupe_vrfs(nb, tenant)
    vrf = vrfs[0]
    return _ensure_route_targets(run, vrf)


def _dedupe_vrfs(nb, tenant: dict) -> list[dict]:
    """Two runs for the same tenant may both create its VRF: the lowest id wins, the others are removed with
    their prefixes (NetBox protects a VRF that still has prefixes; the winner's come from the reservations)."""
    vrfs = _vrfs(nb, tenant)
    for loser in vrfs[1:]:
        _delete(nb, PREFIXES, [p["id"] for p in nb.list(PREFIXES, vrf_id=loser["id"])])
        _delete(nb, VRFS, [loser["id"]])
        _delete_unused_rts(nb, loser)
    return vrfs[:1]


def _rt_name(vrf: dict) -> str:
    return vrf["rd"]  # RD and route targets are both <evpn_asn>:<l3vni>


def _ensure_route_targets(run: _Run, vrf: dict) -> dict:
    name = _rt_name(vrf)
    want = {"import_targets": [name], "export_targets": [name]}
    have = {k: sorted(rt["name"] for rt in vrf.get(k) or []) for k in want}
    if have == want:
        return vrf
    found = run.nb.list(RTS, name=name)
    if found:
        rt = found[0]
    else:
        try:
            rt = run.create(RTS, {"name": name, "tenant": run.tenant["id"],
                                  "description": f"gpucloud {vrf['name']} L3VNI route target"})
        except NetBoxError as exc:  # created meanwhile by a run for the same tenant
            if exc.status not in (400, 500) or not run.nb.list(RTS, name=name):
                raise
            rt = run.nb.list(RTS, name=name)[0]
    return run.nb.update(VRFS, [{"id": vrf["id"], "import_targets": [rt["id"]], "export_targets": [rt["id"]]}])[0]


def _ensure_vlan(run: _Run, free: dict, network: str) -> dict:
    """A network's VLAN (VID and L2VNI), or with network L3VNI_NETWORK the tenant's L3VNI VLAN (a VID only)."""
    nb, pool, tenant = run.nb, run.pool, run.tenant
    name = f"{tenant['slug']}-{network}"
    l3 = network == L3VNI_NETWORK

    def attempt(values):
        body = {"name": name, "vid": values["vid"], "group": pool["group_id"], "tenant": tenant["id"],
                "status": "active", "description": ("gpucloud tenant L3VNI VLAN" if l3
                                                    else f"gpucloud tenant network {network}")}
        if not l3:
            body["custom_fields"] = {"l2vni": values["l2vni"]}
        try:
            return run.create(VLANS, body)
        except NetBoxError as exc:
            if _name_taken(exc):
                return None  # a run for the same tenant created it first: adopt that one
            raise

    vlan = _claim(pool, free, ("vid",) if l3 else ("vid", "l2vni"), attempt, run)
    if vlan is not None and not l3:
        _settle(pool, free, "l2vni", vlan["custom_fields"]["l2vni"],
                lambda v: [x["id"] for x in nb.list(VLANS, cf_l2vni=v, fields="id")], vlan["id"],
                lambda v: nb.update(VLANS, [{"id": vlan["id"], "custom_fields": {"l2vni": v}}]), run)
    else:
        found = nb.list(VLANS, group_id=pool["group_id"], name=name)
        vlan = found[0] if found else None
        if not vlan or _id(vlan.get("tenant")) != tenant["id"]:
            _fail([f"pool {pool['slug']}: VLAN {name} exists but belongs to another tenant"])
    return vlan


def _reserve(run: _Run, vlan: dict, existing: list[dict]) -> None:
    """The VLAN's block, reserved in the container's (global) table.

    Why two prefixes per network: NetBox's available-prefixes counts only the container's own VRF, so a block
    moved into the tenant VRF would be handed out again. The reservation stays in the global table, where
    NetBox's serialised available-prefixes sees it; the tenant VRF gets a prefix with the same CIDR."""
    nb, pool, tenant = run.nb, run.pool, run.tenant
    if any(_id(p.get("vlan")) == vlan["id"] and not p.get("vrf") for p in existing):
        return
    try:
        created = nb.request("POST", f"{PREFIXES}/{pool['container']['id']}/available-prefixes", payload={
            "prefix_length": run.length, "tenant": tenant["id"], "vlan": vlan["id"], "status": "reserved",
            "description": f"gpucloud reservation for tenant network {vlan['name']}"})
    except NetBoxError as exc:
        if exc.status == 409:
            _fail([f"pool {pool['slug']}: no free /{run.length} prefix in {pool['container']['prefix']}"])
        raise
    run.created.append((PREFIXES, created["id"]))
    _dedupe_reservations(nb, pool, tenant)


def _reservations(nb, pool: dict, tenant: dict) -> dict[int, list[dict]]:
    """The tenant's reservations per VLAN id, lowest id first."""
    out: dict[int, list[dict]] = {}
    for p in _prefixes(nb, pool, tenant):
        if not p.get("vrf") and _id(p.get("vlan")):
            out.setdefault(_id(p["vlan"]), []).append(p)
    return out


def _dedupe_reservations(nb, pool: dict, tenant: dict) -> dict[int, dict]:
    """A run for the same tenant may have reserved a block for the same VLAN too: the lowest id stays."""
    found = _reservations(nb, pool, tenant)
    _delete(nb, PREFIXES, [p["id"] for ps in found.values() for p in ps[1:]])
    return {vlan: ps[0] for vlan, ps in found.items()}


def _sync_vrf_prefixes(nb, pool: dict, tenant: dict, vrf: dict, created: list | None = None) -> None:
    """Make the tenant VRF hold exactly one prefix per reservation, with its CIDR and VLAN."""
    reserved = _dedupe_reservations(nb, pool, tenant)
    want = {(str(r["prefix"]), vlan) for vlan, r in reserved.items()}
    have = {}
    stale = []
    for p in sorted(nb.list(PREFIXES, vrf_id=vrf["id"]), key=lambda p: p["id"]):
        key = (str(p["prefix"]), _id(p.get("vlan")))
        if key in want and key not in have:
            have[key] = p
        else:
            stale.append(p["id"])
    _delete(nb, PREFIXES, stale)
    for cidr, vlan in sorted(want - set(have)):
        body = {"prefix": cidr, "vrf": vrf["id"], "vlan": vlan, "tenant": tenant["id"], "status": "active",
                "description": "gpucloud tenant network"}
        try:
            obj = nb.create(PREFIXES, [body])[0]
        except NetBoxError as exc:  # created meanwhile by a run for the same tenant (enforce_unique VRF)
            if exc.status == 400 and "Duplicate prefix" in str(exc):
                continue
            raise
        if created is not None:
            created.append((PREFIXES, obj["id"]))


def _pkey_holders(nb, value: int) -> list[int]:
    return [x["id"] for x in nb.list(TENANTS, cf_ib_pkey=f"0x{value:04x}", fields="id")]


def _ensure_pkey(run: _Run, free: dict) -> None:
    """The P_Key is an update of the tenant, not an object a rollback deletes: a key already set (by a run for
    the same tenant, or by one that failed after writing it) is settled again, so a shared key never stays."""
    nb, pool, tenant = run.nb, run.pool, run.tenant

    def write(value):
        return nb.update(TENANTS, [{"id": tenant["id"], "custom_fields": {"ib_pkey": f"0x{value:04x}"}}])

    current = (_tenant(nb, tenant["slug"]).get("custom_fields") or {}).get("ib_pkey")
    if current:
        _settle(pool, free, "ib_pkey", int(current, 16), lambda v: _pkey_holders(nb, v), tenant["id"], write, run)
        return
    pkey = _claim(pool, free, ("ib_pkey",), lambda values: values["ib_pkey"] if write(values["ib_pkey"]) else None,
                  run)
    _settle(pool, free, "ib_pkey", pkey, lambda v: _pkey_holders(nb, v), tenant["id"], write, run)


def _apply(run: _Run, plan: dict, names: list[str]) -> None:
    free = plan["free"]
    vrf = _ensure_vrf(run, free)
    if plan["missing_l3vni_vlan"]:
        _ensure_vlan(run, free, L3VNI_NETWORK)
    for network in plan["missing_vlans"]:
        _ensure_vlan(run, free, network)
    existing = _prefixes(run.nb, run.pool, run.tenant)
    for vlan in _vlans(run.nb, run.pool, run.tenant):
        if _network({"tenant": run.tenant}, vlan) in names:
            _reserve(run, vlan, existing)
    _sync_vrf_prefixes(run.nb, run.pool, run.tenant, vrf, run.created)
    _ensure_pkey(run, free)


def _converge(nb, pool: dict, tenant: dict) -> None:
    """The last word on a same-tenant race: one VRF (lowest id), one reservation per VLAN (lowest id), and the
    VRF's prefixes matching the reservations."""
    vrfs = _dedupe_vrfs(nb, tenant)
    if vrfs:
        _sync_vrf_prefixes(nb, pool, tenant, vrfs[0])


def _planned(pool: dict, state: dict, plan: dict, names: list[str], length: int) -> dict:
    """Check mode: the allocation with the values a run would most likely take (the lowest free ones;
    a real run picks at random and may differ)."""
    alloc = allocation(pool, state, names)
    free = {k: sorted(v["free"]) for k, v in plan["free"].items()}
    if alloc["vrf"] is None:
        l3vni = free["l3vni"][0]
        rt = f"{pool['asn']}:{l3vni}"
        alloc.update(vrf=device_vrf(l3vni), rd=rt, l3vni=l3vni, route_targets={"import": [rt], "export": [rt]})
    if alloc["l3vni_vid"] is None:  # after the networks' VIDs
        alloc["l3vni_vid"] = free["vid"][len(plan["missing_vlans"])]
    prefixes = iter(plan["first_prefixes"])
    for vlan in alloc["vlans"]:
        if vlan["prefix"] is None:
            vlan["prefix"] = next(prefixes, None)
    for i, network in enumerate(plan["missing_vlans"]):
        alloc["vlans"].append({"name": network, "vid": free["vid"][i], "l2vni": free["l2vni"][i],
                               "prefix": next(prefixes, None)})
    alloc["vlans"].sort(key=lambda v: names.index(v["name"]))
    for vlan in alloc["vlans"]:
        vlan["gateway"] = gateway(ipaddress.ip_network(vlan["prefix"]) if vlan.get("prefix") else None)
    if alloc["ib_pkey"] is None:
        alloc["ib_pkey"] = f"0x{free['ib_pkey'][0]:04x}"
    return alloc


def _complete(state: dict, alloc: dict) -> bool:
    """One VRF with its route targets, the L3VNI VLAN and the pkey set; the VRF holds exactly the
    reservations' CIDRs."""
    if len(state["vrfs"]) != 1 or not alloc["ib_pkey"] or alloc["l3vni_vid"] is None or \
            alloc["route_targets"] != {"import": [alloc["rd"]], "export": [alloc["rd"]]}:
        return False
    vrf = state["vrfs"][0]["id"]
    reserved = [(str(p["prefix"]), _id(p.get("vlan"))) for p in state["prefixes"] if not p.get("vrf")]
    in_vrf = [(str(p["prefix"]), _id(p.get("vlan"))) for p in state["prefixes"] if _id(p.get("vrf")) == vrf]
    others = [p for p in state["prefixes"] if p.get("vrf") and _id(p["vrf"]) != vrf]
    return sorted(reserved) == sorted(in_vrf) and len(set(reserved)) == len(reserved) and not others


def _result(changed: bool, tenant: dict, before: dict, after: dict, **extra) -> dict:
    return {"changed": changed, "tenant_id": tenant["id"], "allocation": after, **extra,
            "diff": {"before": before, "after": after}}


# A run that adopted a VRF or VLAN which a run for the same tenant then deleted (the winner keeps the lowest id)
# gets these from NetBox for a filter or a reference to it; it rolls back and starts again, and finds the winner's.
LOST_RACE = ("is not one of the available choices", "Related object not found")
RACE_ATTEMPTS = 3


def _lost_race(exc: NetBoxError) -> bool:
    return exc.status == 400 and any(words in str(exc) for words in LOST_RACE)


def present(nb, tenant_slug: str, pool_slug: str, vlans, prefix_length: int = 24, check_mode: bool = False,
            container: str | None = None) -> dict:
    """Ensure the tenant's allocation; returns {changed, allocation, diff}."""
    errors = validate({"tenant": tenant_slug, "pool": pool_slug, "vlans": vlans, "prefix_length": prefix_length})
    if errors:
        _fail(errors)
    names = network_names(vlans)
    first: dict = {}  # the allocation before the first attempt: what a retry's result is compared with
    for _ in range(RACE_ATTEMPTS - 1):
        try:
            return _present(nb, tenant_slug, pool_slug, names, prefix_length, check_mode, container, first, True)
        except _LostRace:
            continue
    return _present(nb, tenant_slug, pool_slug, names, prefix_length, check_mode, container, first, False)


class _LostRace(Exception):
    """This attempt lost a same-tenant race; what it created stays (the racers may have adopted it)."""


def _present(nb, tenant_slug: str, pool_slug: str, names: list[str], prefix_length: int, check_mode: bool,
             container: str | None, first: dict, retry_lost_race: bool) -> dict:
    pool = load_pool(nb, pool_slug, container)
    tenant = _tenant(nb, tenant_slug)
    state = read_state(nb, pool, tenant)
    current = allocation(pool, state, names)
    before = first.setdefault("before", current)
    missing_vlans, _l3, missing_prefixes = _missing(state, names)
    if not missing_vlans and not missing_prefixes and _complete(state, current) \
            and _pkey_holders(nb, int(current["ib_pkey"], 16)) == [tenant["id"]]:
        # The common re-run: nothing to plan, so the pool-wide usage queries are skipped.
        return _result(before != current, tenant, before, current)
    plan = _plan(nb, pool, state, names, prefix_length)
    if check_mode:
        after = _planned(pool, state, plan, names, prefix_length)
        return _result(before != after, tenant, before, after)
    run = _Run(nb, pool, tenant, prefix_length)
    try:
        _apply(run, plan, names)
    except (TenantNetworkError, NetBoxError) as exc:
        if retry_lost_race and isinstance(exc, NetBoxError) and _lost_race(exc):
            # No rollback: a racer for the same tenant may have adopted what this run made (a VLAN by its name);
            # the next attempt creates only what is missing and _converge removes the duplicates.
            raise _LostRace() from exc
        left = run.rollback()
        note = f" (rolled back what this run created{'; left behind: ' + ', '.join(left) if left else ''})"
        if isinstance(exc, TenantNetworkError):
            raise TenantNetworkError(str(exc) + note, [e + note for e in exc.errors]) from None
        raise NetBoxError(str(exc) + note, exc.status) from None
    _converge(nb, pool, tenant)
    after = allocation(pool, read_state(nb, pool, _tenant(nb, tenant_slug)), names)
    return _result(before != after, tenant, before, after)


# -- absent -------------------------------------------------------------------------------------------

def _delete(nb, endpoint: str, ids: list[int]) -> None:
    """Bulk delete; objects a concurrent run for the same tenant deleted first are not an error."""
    if not ids:
        return
    try:
        nb.request("DELETE", endpoint, payload=[{"id": i} for i in ids])
    except NetBoxError as exc:
        if exc.status != 400 or "does not exist" not in str(exc):
            raise
        for i in ids:  # the bulk call is atomic and deleted nothing: one by one, skipping the gone
            try:
                nb.request("DELETE", f"{endpoint}/{i}")
            except NetBoxError as one:
                if one.status != 404:
                    raise


def _delete_unused_rts(nb, vrf: dict) -> None:
    """Delete the VRF's route targets that no other VRF imports or exports."""
    for rt in {rt["id"]: rt for k in ("import_targets", "export_targets") for rt in vrf.get(k) or []}.values():
        users = nb.list(VRFS, import_target_id=rt["id"]) + nb.list(VRFS, export_target_id=rt["id"])
        if not [v for v in users if v["id"] != vrf["id"]]:
            try:
                _delete(nb, RTS, [rt["id"]])
            except NetBoxError as exc:
                if exc.status != 404:
                    raise


def _empty(tenant_slug: str) -> dict:
    return {"tenant": tenant_slug, "vrf": None, "rd": None, "route_targets": {"import": [], "export": []},
            "l3vni": None, "l3vni_vid": None, "vlans": [], "ib_pkey": None}


def _released(state: dict, prefixes: list[int], pkey) -> dict:
    return {"prefixes": sorted({p["prefix"] for p in state.get("prefixes", []) if p["id"] in prefixes}),
            "vlans": sorted(v["vid"] for v in state.get("vlans", [])),
            "vrfs": [v["name"] for v in state.get("vrfs", [])], "ib_pkey": pkey}


def absent(nb, tenant_slug: str, pool_slug: str, check_mode: bool = False, container: str | None = None) -> dict:
    """Release everything the tenant holds in the pool: prefixes, VLANs, VRF, route targets, ib_pkey.

    Deleted in dependency order (prefixes before the VLANs and VRF they point at); every step reads
    what is left, so after a failure a re-run finishes the release."""
    errors = validate({"tenant": tenant_slug, "pool": pool_slug, "prefix_length": 24, "state": "absent"})
    if errors:
        _fail(errors)
    pool = load_pool(nb, pool_slug, container)
    found = nb.list(TENANTS, slug=tenant_slug)
    if not found:  # nothing to release: absent already holds
        empty = _empty(tenant_slug)
        return {"changed": False, "tenant_id": None, "allocation": empty, "released": _released({}, [], None),
                "diff": {"before": empty, "after": empty}}
    tenant = found[0]
    state = read_state(nb, pool, tenant)
    before = allocation(pool, state)
    vrf_ids = {v["id"] for v in state["vrfs"]}
    vlan_ids = {v["id"] for v in state["vlans"]}
    prefixes = [p["id"] for p in state["prefixes"]
                if _id(p.get("vrf")) in vrf_ids or _id(p.get("vlan")) in vlan_ids]
    pkey = (tenant.get("custom_fields") or {}).get("ib_pkey")
    after = _empty(tenant_slug)
    released = _released(state, prefixes, pkey)
    if not check_mode:
        _delete(nb, PREFIXES, prefixes)
        _delete(nb, VLANS, sorted(vlan_ids))
        for vrf in state["vrfs"]:
            _delete(nb, PREFIXES, [p["id"] for p in nb.list(PREFIXES, vrf_id=vrf["id"])])  # carved by a racer
            _delete(nb, VRFS, [vrf["id"]])
            _delete_unused_rts(nb, vrf)
        if pkey:
            nb.update(TENANTS, [{"id": tenant["id"], "custom_fields": {"ib_pkey": None}}])
    return _result(before != after, tenant, before, after, released=released)
