"""A deterministic demo GPU fleet: sites, rows, racks, NVLink domains, leaves, spines, IB leaves.

Pure data, no I/O: the same node count always yields the same fleet, so dumps of a populated
NetBox can be cached by (generator version, node count).

Topology: a row is one leaf and one IB leaf serving every server in it (at most 36); each site
has two spines and every leaf uplinks to both. HGX-class servers carry one NVLink domain each
(8 GPUs on one NVSwitch board); GB200 trays share one NVL72 domain per rack of 18.

Underlay (eBGP, RFC 7938 style): a site's spines share one ASN, each leaf has its own; every Ethernet
switch has a /32 loopback (router-id and VTEP) and every leaf-spine cable a /31. A site is its own
fabric, so ASNs repeat across sites while addresses stay unique fleet-wide.
"""

import ipaddress
import math
from dataclasses import dataclass, field

ROW_MODELS = ["hgx-h100-8gpu", "hgx-h200-8gpu", "gb200-nvl72-tray", "hgx-b200-8gpu", "mi300x-8gpu", "gaudi3-8oam"]
RACK_SIZE = {"gb200-nvl72-tray": 18}  # servers per rack; default below
DEFAULT_RACK_SIZE = 4
U_HEIGHT = {"gb200-nvl72-tray": 1, "hgx-b200-8gpu": 10}  # as in the data model's device types
DEFAULT_U_HEIGHT = 8
ROW_CAPACITY = 32
MAX_ROWS_PER_SITE = 60
LEAF_UPLINKS = (63, 64)  # leaf swp63 -> spine 1, swp64 -> spine 2
TENANTS = [("acme", "Acme AI"), ("globex", "Globex Research"), ("initech", "Initech Labs")]
BMC_NET = ipaddress.ip_network("127.100.0.0/16")   # loopback: the lab's Redfish emulators live here
MGMT_NET = ipaddress.ip_network("127.101.0.0/16")
BMC_CREDENTIAL_REF = "env:GPUCLOUD_LAB_BMC_PASSWORD"
LOOPBACK_NET = ipaddress.ip_network("10.255.0.0/16")
P2P_NET = ipaddress.ip_network("172.16.0.0/16")
SPINE_ASN = 65100  # leaves: SPINE_ASN + row number within the site (at most MAX_ROWS_PER_SITE)


@dataclass
class Server:
    name: str
    site: str
    row: str
    rack: str
    position: int
    device_type: str
    nvlink_domain: str
    leaf: str
    leaf_port: str
    ib_leaf: str
    ib_port: str
    tenant: str | None
    bmc_ip: str
    mgmt_ip: str
    ib_guid: str


@dataclass
class Switch:
    name: str
    site: str
    row: str | None
    role: str
    device_type: str
    asn: int | None = None
    loopback: str | None = None  # "a.b.c.d/32" on interface lo


@dataclass
class Fleet:
    sites: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)          # (site, row)
    racks: list[tuple[str, str, str]] = field(default_factory=list)    # (site, row, rack)
    servers: list[Server] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)
    cables: list[tuple[str, str, str, str]] = field(default_factory=list)  # (dev_a, if_a, dev_b, if_b)
    p2p: list[tuple[str, str, str]] = field(default_factory=list)  # (device, interface, "a.b.c.d/31")


def row_count(nodes: int) -> int:
    # Small fleets still show every model; large ones fill rows of ROW_CAPACITY.
    return max(math.ceil(nodes / ROW_CAPACITY), min(len(ROW_MODELS), math.ceil(nodes / 4)), 1)


def plan(nodes: int) -> Fleet:
    if nodes < 1:
        raise ValueError(f"--nodes: expected a positive number of servers, got {nodes}")
    rows = row_count(nodes)
    n_sites = max(2, math.ceil(rows / MAX_ROWS_PER_SITE)) if nodes > 1 else 1
    fleet = Fleet(sites=[f"dc{i + 1}" for i in range(n_sites)])
    for site in fleet.sites:
        for spine in (1, 2):
            _ethernet_switch(fleet, f"spine-{site}-{spine}", site, None, "spine", SPINE_ASN)
    per_row = [nodes // rows + (1 if r < nodes % rows else 0) for r in range(rows)]
    index = 0
    for r in range(rows):
        site = fleet.sites[r % n_sites]
        row_in_site = r // n_sites + 1
        index = _plan_row(fleet, site, row_in_site, ROW_MODELS[r % len(ROW_MODELS)], per_row[r], index)
    return fleet


def _ethernet_switch(fleet: Fleet, name: str, site: str, row: str | None, role: str, asn: int) -> Switch:
    """A leaf or spine with the next loopback (in the order switches are planned)."""
    number = sum(1 for sw in fleet.switches if sw.loopback) + 1
    switch = Switch(name, site, row, role, "sn5600", asn=asn, loopback=f"{LOOPBACK_NET.network_address + number}/32")
    fleet.switches.append(switch)
    return switch


def _uplink(fleet: Fleet, leaf: str, leaf_port: str, spine: str, spine_port: str) -> None:
    """A leaf-spine cable and its /31 (the leaf takes the even address)."""
    base = P2P_NET.network_address + len(fleet.p2p)
    fleet.cables.append((leaf, leaf_port, spine, spine_port))
    fleet.p2p += [(leaf, leaf_port, f"{base}/31"), (spine, spine_port, f"{base + 1}/31")]


def _plan_row(fleet: Fleet, site: str, row_no: int, model: str, count: int, index: int) -> int:
    row = f"{site}-row{row_no:02d}"
    leaf, ib_leaf = f"leaf-{site}-r{row_no:02d}", f"ibleaf-{site}-r{row_no:02d}"
    fleet.rows.append((site, row))
    _ethernet_switch(fleet, leaf, site, row, "leaf", SPINE_ASN + row_no)
    fleet.switches.append(Switch(ib_leaf, site, row, "ib-switch", "qm9700"))
    for spine, port in zip((1, 2), LEAF_UPLINKS, strict=True):
        _uplink(fleet, leaf, f"swp{port}", f"spine-{site}-{spine}", f"swp{row_no}")
    rack_size = RACK_SIZE.get(model, DEFAULT_RACK_SIZE)
    height = U_HEIGHT.get(model, DEFAULT_U_HEIGHT)
    for slot in range(count):
        rack_no, in_rack = divmod(slot, rack_size)
        rack = f"{site}-r{row_no:02d}-k{rack_no + 1:02d}"
        if in_rack == 0:
            fleet.racks.append((site, row, rack))
        name = f"gpu-{site}-r{row_no:02d}-k{rack_no + 1:02d}-n{in_rack + 1:02d}"
        # Racks are handed out to the demo tenants in turn; every (len(TENANTS)+1)-th rack stays free.
        owner = (len(fleet.racks) - 1) % (len(TENANTS) + 1)
        fleet.servers.append(Server(
            name=name, site=site, row=row, rack=rack, position=1 + in_rack * height, device_type=model,
            nvlink_domain=f"nvl72-{rack}" if model in RACK_SIZE else f"nvl8-{name}",
            leaf=leaf, leaf_port=f"swp{slot + 1}", ib_leaf=ib_leaf, ib_port=f"ib{slot + 1}",
            tenant=TENANTS[owner][0] if owner < len(TENANTS) else None,
            bmc_ip=f"{BMC_NET.network_address + index + 1}/{BMC_NET.prefixlen}",
            mgmt_ip=f"{MGMT_NET.network_address + index + 1}/{MGMT_NET.prefixlen}",
            ib_guid=f"0x1070fd0300{index:06x}",
        ))
        fleet.cables.append((name, "eth0", leaf, f"swp{slot + 1}"))
        fleet.cables.append((name, "ib0", ib_leaf, f"ib{slot + 1}"))
        index += 1
    return index
