# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A cluster's topology as both schedulers are told it: site > spine plane > leaf > NVLink domain > node.

Per node the gpucloud_netbox inventory gives site, row (location), leaf (the switch eth0 is cabled to) and
NVLink domain; NetBox gives each leaf's spines and each row's pod (netbox_topology.read). A *spine plane* is the
set of spines a group of leaves is cabled to: in a Clos fabric every leaf of a pod reaches every spine of it, so
the plane, not a single spine, is the level above the leaf. Without spine data the pod (else the site) stands
in for it, which is how placement groups leaves too.

Only NVLink domains holding two or more of the cluster's nodes are a level of their own (an HGX server is a
domain of one; an NVL72 rack of trays is one domain of up to 18).
"""

from __future__ import annotations


def spine_plane_name(spines: list[str]) -> str:
    """spine-dc1-1 + spine-dc1-2 -> spine-dc1 (their common prefix); one spine keeps its name."""
    if len(spines) == 1:
        return spines[0]
    first, last = min(spines), max(spines)
    common = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    prefix = first[:common]
    if prefix[-1:].isdigit() and first[common:common + 1].isdigit():  # spine11 + spine12: the number differs
        prefix = prefix.rstrip("0123456789")
    prefix = prefix.rstrip("-_.")
    return prefix if prefix else "_".join(sorted(spines))


def build(nodes: list[dict], spines: dict | None = None, pods: dict | None = None) -> dict:
    """The topology of nodes [{name, site, location, leaf, nvlink_domain}] as plain data (see module docstring).

    Returns {sites: {site: [plane]}, planes: {plane: {site, spines, leaves}}, leaves: {leaf: {plane, nodes}},
    domains: {domain: {nodes, leaves}}, nodes: {name: {site, pod, plane, leaf, domain}}, unplaced: [name]}.
    """
    spines, pods = spines or {}, pods or {}
    out = {"sites": {}, "planes": {}, "leaves": {}, "domains": {}, "nodes": {}, "unplaced": []}
    members: dict[str, list[str]] = {}
    for node in nodes:
        if node.get("nvlink_domain"):
            members.setdefault(str(node["nvlink_domain"]), []).append(node["name"])
    shared = {domain for domain, names in members.items() if len(names) > 1}
    for node in sorted(nodes, key=lambda n: n["name"]):
        site = node.get("site") or "default"
        pod = pods.get(node.get("location")) or None
        leaf = node.get("leaf")
        domain = str(node["nvlink_domain"]) if str(node.get("nvlink_domain")) in shared else None
        plane = None
        if leaf:
            leaf_spines = spines.get(leaf) or []
            plane = spine_plane_name(leaf_spines) if leaf_spines else (pod or site)
            entry = out["planes"].setdefault(plane, {"site": site, "spines": leaf_spines, "leaves": []})
            if leaf not in entry["leaves"]:
                entry["leaves"].append(leaf)
            out["leaves"].setdefault(leaf, {"plane": plane, "nodes": []})["nodes"].append(node["name"])
            if plane not in out["sites"].setdefault(site, []):
                out["sites"][site].append(plane)
        else:
            out["unplaced"].append(node["name"])
        if domain:
            entry = out["domains"].setdefault(domain, {"nodes": [], "leaves": []})
            entry["nodes"].append(node["name"])
            if leaf and leaf not in entry["leaves"]:
                entry["leaves"].append(leaf)
        out["nodes"][node["name"]] = {"site": site, "pod": pod, "plane": plane, "leaf": leaf, "domain": domain}
    return out
