# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The part of a cluster's topology the inventory does not carry, read from NetBox: which spines each leaf is
cabled to, and which pod each row belongs to (a row's parent location, as placement sees it).

Hosts already carry their site, row (location), leaf (the switch eth0 is cabled to) and NVLink domain from the
gpucloud_netbox inventory; this adds the levels above the leaf in four bulk queries, read-only.
"""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_inputs

DEVICES = "dcim/devices"
LOCATIONS = "dcim/locations"
PAGE = 1000


class TopologyReadError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _spines(nb, leaves: dict, roles: list[str]) -> dict[str, list[str]]:
    """Per leaf name the sorted names of the devices of a spine role it is cabled to."""
    sites = sorted({d["site"]["id"] for d in leaves.values()})
    spine_ids = {d["id"]: d["name"] for d in nb.list(DEVICES, page_size=PAGE, site_id=sites, role=roles,
                                                     fields="id,name")} if sites else {}
    out: dict[str, set] = {name: set() for name in leaves}
    for near, far in fabric_inputs.cables_of(nb, leaves):
        device = far.get("device")
        spine = spine_ids.get(device.get("id") if isinstance(device, dict) else device)
        if spine:
            out[near["device"]["name"]].add(spine)
    return {leaf: sorted(spines) for leaf, spines in sorted(out.items())}


def _pods(nb, locations: list[str]) -> dict[str, str | None]:
    """Per location slug its parent location's slug (the pod), None for a top-level location."""
    rows = fabric_inputs.by_ids(nb, LOCATIONS, "slug", locations, fields="id,slug,parent")
    found = {row["slug"]: ((row.get("parent") or {}).get("slug")) for row in rows}
    return {slug: found.get(slug) for slug in sorted(locations)}


def read(nb, leaves: list[str], locations: list[str] | None = None, spine_roles: list[str] | None = None) -> dict:
    """{spines: {leaf: [spine, ...]}, pods: {location: pod or None}}; TopologyReadError naming every unknown leaf."""
    names = sorted({leaf for leaf in leaves if leaf})
    found = {d["name"]: d for d in fabric_inputs.by_ids(nb, DEVICES, "name", names, fields="id,name,site")}
    missing = [name for name in names if name not in found]
    if missing:
        raise TopologyReadError([f"leaves: no device {name!r} in NetBox" for name in missing])
    return {"spines": _spines(nb, found, spine_roles or ["spine"]),
            "pods": _pods(nb, sorted({loc for loc in locations or [] if loc}))}
