# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""AVD-style structured config of the tenant fabric: from plain data (fabric settings, tenant
allocations as tenant_network returns them, and which switch ports carry which tenant VLAN) to one
platform-neutral dict per switch. Renderers (fabric_render) turn that dict into device config and
decide nothing themselves.

Only a switch with a port of a tenant gets that tenant's VRF and the VLANs it has ports in, so
removing a tenant (or its last port on a leaf) removes exactly its config there. Every list is
sorted, so the same input always gives the same config, byte for byte once rendered.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_render, fabric_schema

DEFAULT_VXLAN_PORT = 4789
# IPv4-address RDs ("router-id:N", what a leaf uses so each leaf's routes stay distinct) carry 16 bits.
RD_IP_MAX = 65535


class FabricConfigError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def _natural(name: str) -> list:
    """swp2 before swp10, Ethernet4 before Ethernet12."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _number(community: str) -> int:
    return int(str(community).rsplit(":", 1)[1])


def _dicts(items) -> list[tuple[int, dict]]:
    """(index, item) of the list entries that are dicts; the schema reports the others."""
    return [(i, item) for i, item in enumerate(items if isinstance(items, list) else []) if isinstance(item, dict)]


def _duplicates(pairs: list[tuple[str, object]], what: str) -> list[str]:
    """pairs of (path, value): one error per later path repeating a value."""
    seen, found = {}, []
    for path, value in pairs:
        if value is None:
            continue
        if value in seen:
            found.append(f"{path}: {what} {value} is already used by {seen[value]}")
        else:
            seen[value] = path
    return found


def _vlan_errors(where: str, vlan: dict) -> list[str]:
    try:
        prefix = ipaddress.ip_network(vlan["prefix"], strict=False)
        gateway = ipaddress.ip_address(vlan["gateway"])
    except (KeyError, TypeError, ValueError):
        return []
    found = []
    if str(prefix) != vlan["prefix"]:
        found.append(f"{where}.prefix: {vlan['prefix']} has host bits set (expected {prefix})")
    if gateway not in prefix:
        found.append(f"{where}.gateway: {gateway} is not in prefix {prefix}")
    elif prefix.prefixlen < 31 and gateway in (prefix.network_address, prefix.broadcast_address):
        found.append(f"{where}.gateway: {gateway} is the network or broadcast address of {prefix}")
    return found


def _tenant_errors(tenants: list, evpn_asn) -> list[str]:
    found, vrf_names, names, vnis = [], [], [], []
    for t, tenant in _dicts(tenants):
        where = f"tenants[{t}]"
        names.append((f"{where}.tenant", tenant.get("tenant")))
        vrf_names.append((f"{where}.vrf", tenant.get("vrf")))
        vnis.append((f"{where}.l3vni", tenant.get("l3vni")))
        if isinstance(tenant.get("rd"), str) and ":" in tenant["rd"] and _number(tenant["rd"]) > RD_IP_MAX:
            found.append(f"{where}.rd: the number after ':' must be at most {RD_IP_MAX} (leaf RDs are router-id:N)")
        vlan_names = []
        for v, vlan in _dicts(tenant.get("vlans")):
            vnis.append((f"{where}.vlans[{v}].l2vni", vlan.get("l2vni")))
            vlan_names.append((f"{where}.vlans[{v}].name", vlan.get("name")))
            found += _vlan_errors(f"{where}.vlans[{v}]", vlan)
            if isinstance(evpn_asn, int) and evpn_asn > 65535 and isinstance(vlan.get("l2vni"), int) \
                    and vlan["l2vni"] > 65535:
                found.append(f"{where}.vlans[{v}].l2vni: {vlan['l2vni']} does not fit a route target of the "
                             f"4-byte evpn_asn {evpn_asn} (at most 65535)")
        found += _duplicates(vlan_names, "VLAN name")
        found += _duplicates([(f"{where}.vlans[{v}].vid", vlan.get("vid")) for v, vlan in _dicts(tenant.get("vlans"))],
                             "VID")
    return found + _duplicates(names, "tenant") + _duplicates(vrf_names, "VRF") + _duplicates(vnis, "VNI")


def _find_vlan(tenant: dict, ref) -> dict | None:
    for _v, vlan in _dicts(tenant.get("vlans")):
        if ref in (vlan.get("name"), vlan.get("vid")):
            return vlan
    return None


def _attachment_errors(inputs: dict) -> list[str]:
    fabric = inputs.get("fabric") if isinstance(inputs.get("fabric"), dict) else {}
    switches = fabric.get("switches") if isinstance(fabric.get("switches"), dict) else {}
    tenants = {t.get("tenant"): t for _i, t in _dicts(inputs.get("tenants"))}
    found, ports = [], []
    for a, att in _dicts(inputs.get("attachments")):
        where = f"attachments[{a}]"
        switch = switches.get(att.get("switch"))
        ports.append((where, (att.get("switch"), att.get("interface"))))
        if not isinstance(switch, dict):
            found.append(f"{where}.switch: unknown switch {att.get('switch')!r} (known: {', '.join(sorted(switches))})")
        elif att.get("interface") in {u.get("interface") for _u, u in _dicts(switch.get("uplinks"))}:
            found.append(f"{where}.interface: {att.get('interface')} is an uplink of {att.get('switch')}")
        tenant = tenants.get(att.get("tenant"))
        if tenant is None:
            found.append(f"{where}.tenant: unknown tenant {att.get('tenant')!r}")
        elif _find_vlan(tenant, att.get("vlan")) is None:
            found.append(f"{where}.vlan: tenant {att.get('tenant')} has no VLAN {att.get('vlan')!r}")
        elif isinstance(switch, dict) and switch.get("platform") == "sonic" and tenant.get("l3vni_vid") is None:
            found.append(f"{where}: tenant {att.get('tenant')} needs l3vni_vid on SONiC switch {att.get('switch')} "
                         "(SONiC maps an L3VNI through a VLAN)")
    seen = {}
    for path, port in ports:
        if port in seen:
            found.append(f"{path}: port {port[0]} {port[1]} is attached twice (first: {seen[port]})")
        seen.setdefault(port, path)
    return found


def _switch_errors(switches: dict) -> list[str]:
    ids, vteps, found, known = [], [], [], fabric_render.platforms()
    for name in sorted(switches if isinstance(switches, dict) else {}):
        switch = switches[name] if isinstance(switches[name], dict) else {}
        if isinstance(switch.get("platform"), str) and switch["platform"] not in known:
            found.append(f"fabric.switches.{name}.platform: no renderer for {switch['platform']!r} "
                         f"(known: {', '.join(known)})")
        ids.append((f"fabric.switches.{name}.router_id", switch.get("router_id")))
        vteps.append((f"fabric.switches.{name}.vtep_ip", switch.get("vtep_ip") or switch.get("router_id")))
    return found + _duplicates(ids, "router-id") + _duplicates(vteps, "VTEP address")


def validate_inputs(inputs) -> list[str]:
    """Every problem of the inputs at once: schema violations, then cross-references and duplicates."""
    found = fabric_schema.errors(inputs, fabric_schema.INPUT)
    if not isinstance(inputs, dict):
        return found
    fabric = inputs.get("fabric") if isinstance(inputs.get("fabric"), dict) else {}
    semantic = _switch_errors(fabric.get("switches")) + _tenant_errors(inputs.get("tenants"), fabric.get("evpn_asn"))
    return found + semantic + _attachment_errors(inputs)


def _rts(imports: list[str], exports: list[str]) -> dict:
    both = set(imports) & set(exports)
    return {"both": sorted(both), "import": sorted(set(imports) - both), "export": sorted(set(exports) - both)}


def _switch_config(name: str, switch: dict, fabric: dict, attached: dict[str, dict]) -> dict:
    """attached: tenant name -> {"tenant": allocation, "vlans": {vid: (vlan, [ports])}} on this switch."""
    router_id = switch["router_id"]
    vtep = switch.get("vtep_ip") or router_id
    mac = fabric["anycast_gateway_mac"]
    vrfs, vlans, svis, ports = [], [], [], []
    for tenant_name in sorted(attached, key=lambda n: attached[n]["tenant"]["vrf"]):
        tenant = attached[tenant_name]["tenant"]
        vrfs.append({"name": tenant["vrf"], "tenant": tenant_name, "l3vni": tenant["l3vni"],
                     "l3vni_vlan": tenant.get("l3vni_vid"), "rd": f"{router_id}:{_number(tenant['rd'])}",
                     "route_targets": _rts(tenant["route_targets"]["import"], tenant["route_targets"]["export"])})
        for vid, (vlan, members) in attached[tenant_name]["vlans"].items():
            rt = f"{fabric['evpn_asn']}:{vlan['l2vni']}"
            prefix = ipaddress.ip_network(vlan["prefix"], strict=False)
            vlans.append({"vid": vid, "name": vlan["name"], "tenant": tenant_name, "vrf": tenant["vrf"],
                          "l2vni": vlan["l2vni"], "rd": f"{router_id}:{vid}", "route_targets": _rts([rt], [rt]),
                          "ports": sorted(members, key=_natural)})
            svis.append({"vlan": vid, "vrf": tenant["vrf"], "ip_address": f"{vlan['gateway']}/{prefix.prefixlen}",
                         "anycast_mac": mac})
            ports += [{"interface": port, "vlan": vid, "tenant": tenant_name} for port in members]
    vlans.sort(key=lambda v: v["vid"])
    svis.sort(key=lambda s: s["vlan"])
    ports.sort(key=lambda p: _natural(p["interface"]))
    uplinks = sorted(switch["uplinks"], key=lambda u: _natural(u["interface"]))
    return {
        "hostname": name, "platform": switch["platform"], "vrf_backend": fabric["vrf_backend"],
        "router_id": router_id, "vtep_ip": vtep, "anycast_gateway_mac": mac,
        "underlay_interfaces": [{"name": u["interface"], "ip_address": u["ip_address"]} for u in uplinks],
        "vrfs": vrfs, "vlans": vlans, "svis": svis,
        "vxlan": {"source_ip": vtep, "udp_port": fabric.get("vxlan_udp_port", DEFAULT_VXLAN_PORT),
                  "vlan_vnis": [{"vlan": v["vid"], "vni": v["l2vni"]} for v in vlans],
                  "vrf_vnis": [{"vrf": v["name"], "vni": v["l3vni"]} for v in vrfs]},
        "access_ports": ports,
        "bgp": {"asn": switch["asn"], "router_id": router_id,
                "networks": sorted({f"{vtep}/32", f"{router_id}/32"}, key=ipaddress.ip_network),
                "neighbors": sorted(({"ip": u["peer_ip"], "remote_as": u["peer_asn"], "interface": u["interface"]}
                                     for u in uplinks), key=lambda n: ipaddress.ip_address(n["ip"])),
                # eBGP leaves have different ASNs, so auto-derived RTs (ASN:VNI) never match: explicit per VNI.
                "evpn": {"advertise_all_vni": True,
                         "vnis": [{"vni": v["l2vni"], "rd": v["rd"], "route_targets": v["route_targets"]}
                                  for v in vlans]},
                "vrfs": [{"name": v["name"], "rd": v["rd"], "route_targets": v["route_targets"],
                          "advertise_ipv4_unicast": True, "redistribute_connected": True} for v in vrfs]},
    }


def _attachments_by_switch(inputs: dict) -> dict[str, dict[str, dict]]:
    tenants = {t["tenant"]: t for t in inputs["tenants"]}
    by_switch: dict[str, dict[str, dict]] = {name: {} for name in inputs["fabric"]["switches"]}
    for att in inputs["attachments"]:
        tenant = tenants[att["tenant"]]
        vlan = _find_vlan(tenant, att["vlan"])
        entry = by_switch[att["switch"]].setdefault(att["tenant"], {"tenant": tenant, "vlans": {}})
        entry["vlans"].setdefault(vlan["vid"], (vlan, []))[1].append(att["interface"])
    return by_switch


def build(inputs: dict) -> dict:
    """{switch name: structured config}; FabricConfigError with every problem when the inputs are bad."""
    problems = validate_inputs(inputs)
    if problems:
        raise FabricConfigError(problems)
    fabric = inputs["fabric"]
    config = {name: _switch_config(name, fabric["switches"][name], fabric, attached)
              for name, attached in sorted(_attachments_by_switch(inputs).items())}
    problems = validate(config)
    if problems:
        raise FabricConfigError(problems)
    return config


def _structured_errors(name: str, switch: dict) -> list[str]:
    found, vrf_names = [], {v.get("name") for _i, v in _dicts(switch.get("vrfs"))}
    vids = [(f"{name}.vlans[{i}].vid", v.get("vid")) for i, v in _dicts(switch.get("vlans"))]
    vids += [(f"{name}.vrfs[{i}].l3vni_vlan", v.get("l3vni_vlan")) for i, v in _dicts(switch.get("vrfs"))]
    vnis = [(f"{name}.vlans[{i}].l2vni", v.get("l2vni")) for i, v in _dicts(switch.get("vlans"))]
    vnis += [(f"{name}.vrfs[{i}].l3vni", v.get("l3vni")) for i, v in _dicts(switch.get("vrfs"))]
    ports = [(f"{name}.access_ports[{i}].interface", p.get("interface")) for i, p in _dicts(switch.get("access_ports"))]
    found += _duplicates(vids, "VID") + _duplicates(vnis, "VNI") + _duplicates(ports, "interface")
    found += _duplicates([(f"{name}.vrfs[{i}].name", v.get("name")) for i, v in _dicts(switch.get("vrfs"))], "VRF")
    vlan_ids = {v.get("vid") for _i, v in _dicts(switch.get("vlans"))}
    for kind in ("vlans", "svis"):
        for i, item in _dicts(switch.get(kind)):
            if item.get("vrf") not in vrf_names:
                found.append(f"{name}.{kind}[{i}].vrf: unknown VRF {item.get('vrf')!r} on this switch")
    for i, svi in _dicts(switch.get("svis")):
        if svi.get("vlan") not in vlan_ids:
            found.append(f"{name}.svis[{i}].vlan: no VLAN {svi.get('vlan')} on this switch")
        try:
            iface = ipaddress.ip_interface(svi["ip_address"])
        except (KeyError, TypeError, ValueError):
            continue
        if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address,
                                                          iface.network.broadcast_address):
            found.append(f"{name}.svis[{i}].ip_address: {iface.ip} is the network or broadcast address")
    for i, port in _dicts(switch.get("access_ports")):
        if port.get("vlan") not in vlan_ids:
            found.append(f"{name}.access_ports[{i}].vlan: no VLAN {port.get('vlan')} on this switch")
    return found


def validate(config) -> list[str]:
    """Every problem of a structured config at once: schema, then per-switch duplicates and references."""
    found = fabric_schema.errors(config, fabric_schema.STRUCTURED)
    if isinstance(config, dict):
        for name in sorted(config):
            if isinstance(config[name], dict):
                found += _structured_errors(name, config[name])
    return found


# Front-panel port N (1-based) under each platform's naming: (prefix, name of port 1, step). SONiC names a port
# after its first SerDes lane, four lanes a port here.
PORT_NAMING = {"linux": ("swp", 1, 1), "eos": ("Ethernet", 1, 1), "sonic": ("Ethernet", 0, 4)}


def _port_number(name, platform: str) -> int | None:
    prefix, first, step = PORT_NAMING.get(platform, (None, 1, 1))
    match = re.fullmatch(rf"{prefix}(\d+)", str(name)) if prefix else None
    if not match or (int(match.group(1)) - first) % step:
        return None
    return (int(match.group(1)) - first) // step + 1


def port_name(name, source: str, target: str):
    """A port's name on platform target, from its name on platform source (unchanged when not a front-panel
    port of source's naming, or target has no known naming)."""
    number = _port_number(name, source)
    if number is None or target not in PORT_NAMING:
        return name
    prefix, first, step = PORT_NAMING[target]
    return f"{prefix}{first + (number - 1) * step}"


def _with_platform(inputs, platform: str | None):
    """The inputs with every switch rendered for another platform: its platform replaced and its ports renamed to
    that platform's naming (the same tenants as SONiC or EOS config)."""
    fabric = inputs.get("fabric") if isinstance(inputs, dict) else None
    if not platform or not isinstance(fabric, dict) or not isinstance(fabric.get("switches"), dict):
        return inputs
    switches, sources = {}, {}
    for name, sw in fabric["switches"].items():
        if not isinstance(sw, dict):
            switches[name] = sw
            continue
        sources[name] = sw.get("platform")
        uplinks = [{**u, "interface": port_name(u.get("interface"), sources[name], platform)}
                   if isinstance(u, dict) else u for u in sw.get("uplinks") or []]
        switches[name] = {**sw, "platform": platform, "uplinks": uplinks}
    attachments = [{**a, "interface": port_name(a.get("interface"), sources.get(a.get("switch")), platform)}
                   if isinstance(a, dict) else a for a in inputs.get("attachments") or []]
    return {**inputs, "fabric": {**fabric, "switches": switches}, "attachments": attachments}


def switch_files(inputs, platform: str | None = None, switches: list[str] | None = None) -> dict:
    """{switch: {platform, config, files}} of the switches asked for (default all): built, rendered and, for
    platforms with an offline check, checked. FabricConfigError with every problem at once."""
    config = build(_with_platform(inputs, platform))
    unknown = [name for name in switches or [] if name not in config]
    if unknown:
        raise FabricConfigError([f"switches: {name!r} is not a switch of the inputs (known: {', '.join(config)})"
                                 for name in unknown])
    out, problems = {}, []
    for name in switches or sorted(config):
        try:
            files = fabric_render.render(config[name])
        except fabric_render.RenderError as exc:
            problems.append(f"{name}: {exc}")
            continue
        problems += [f"{name}: {e}" for e in fabric_render.output_errors(config[name]["platform"], files)]
        out[name] = {"platform": config[name]["platform"], "config": config[name], "files": files}
    if problems:
        raise FabricConfigError(problems)
    return out
