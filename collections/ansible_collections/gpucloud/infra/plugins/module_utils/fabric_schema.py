# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""JSON schemas of the fabric layer: the inputs (fabric settings, tenant allocations, attachments),
the per-switch structured config, and the SONiC config_db tables the SONiC renderer emits.

`errors(instance, schema)` reports every violation at once as "path: message", the path written
like "leaf1.vlans[3].l2vni" so an operator finds the field without reading a traceback.
"""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils import schema

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Linux netdev names are at most 15 characters; VRF devices and bridge ports live there.
IFNAME = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_./:-]*$", "maxLength": 15}
IPV4 = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
IP = {"type": "string", "pattern": f"^{IPV4}$"}
IP_PREFIX = {"type": "string", "pattern": f"^{IPV4}/([0-9]|[12][0-9]|3[0-2])$"}
MAC = {"type": "string", "pattern": r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"}
ASN = {"type": "integer", "minimum": 1, "maximum": 4294967295}
VID = {"type": "integer", "minimum": 1, "maximum": 4094}
VNI = {"type": "integer", "minimum": 1, "maximum": 16777215}
# RD / RT: "<asn or IPv4>:<number>" (type 0/1/2 of RFC 4364).
COMMUNITY = {"type": "string", "pattern": rf"^([0-9]{{1,10}}|{IPV4}):[0-9]{{1,10}}$"}
RTS = {"type": "object", "additionalProperties": False, "required": ["import", "export"],
       "properties": {"import": {"type": "array", "minItems": 1, "items": COMMUNITY},
                      "export": {"type": "array", "minItems": 1, "items": COMMUNITY}}}
# In the structured config, AVD-style: an RT in both directions is listed once under "both".
RT_SET = {"type": "object", "additionalProperties": False, "required": ["both", "import", "export"],
          "properties": {"both": {"type": "array", "items": COMMUNITY}, "import": {"type": "array", "items": COMMUNITY},
                         "export": {"type": "array", "items": COMMUNITY}}}
VRF_NAME = {"type": "string", "pattern": NAME, "maxLength": 15}
BACKENDS = ["device", "netns"]


_obj = schema.obj
_list = schema.array


UPLINK = _obj(["interface", "ip_address", "peer_ip", "peer_asn"],
              {"interface": IFNAME, "ip_address": IP_PREFIX, "peer_ip": IP, "peer_asn": ASN})
SWITCH = _obj(["platform", "asn", "router_id", "uplinks"],
              {"platform": {"type": "string", "pattern": NAME}, "asn": ASN, "router_id": IP, "uplinks": _list(UPLINK)},
              {"vtep_ip": IP})
TENANT_VLAN = _obj(["name", "vid", "l2vni", "prefix", "gateway"],
                   {"name": {"type": "string", "pattern": NAME, "maxLength": 32}, "vid": VID, "l2vni": VNI,
                    "prefix": IP_PREFIX, "gateway": IP})
TENANT = _obj(["tenant", "vrf", "rd", "route_targets", "l3vni", "vlans"],
              {"tenant": {"type": "string", "pattern": NAME}, "vrf": VRF_NAME, "rd": COMMUNITY, "route_targets": RTS,
               "l3vni": VNI, "vlans": _list(TENANT_VLAN, minItems=1)},
              {"ib_pkey": {"type": ["string", "integer"]}, "l3vni_vid": VID})
ATTACHMENT = _obj(["switch", "interface", "tenant", "vlan"],
                  {"switch": {"type": "string", "pattern": NAME}, "interface": IFNAME,
                   "tenant": {"type": "string", "pattern": NAME},
                   "vlan": {"type": ["string", "integer"]}})
FABRIC = _obj(["evpn_asn", "anycast_gateway_mac", "vrf_backend", "switches"],
              {"evpn_asn": ASN, "anycast_gateway_mac": MAC, "vrf_backend": {"enum": BACKENDS},
               "switches": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME},
                            "additionalProperties": SWITCH}},
              {"name": {"type": "string"}, "vxlan_udp_port": {"type": "integer", "minimum": 1, "maximum": 65535}})
INPUT = _obj(["fabric", "tenants", "attachments"],
             {"fabric": FABRIC, "tenants": _list(TENANT), "attachments": _list(ATTACHMENT)})

VRF = _obj(["name", "tenant", "l3vni", "l3vni_vlan", "rd", "route_targets"],
           {"name": VRF_NAME, "tenant": {"type": "string"}, "l3vni": VNI,
            "l3vni_vlan": {"oneOf": [VID, {"type": "null"}]}, "rd": COMMUNITY, "route_targets": RT_SET})
VLAN = _obj(["vid", "name", "tenant", "vrf", "l2vni", "rd", "route_targets", "ports"],
            {"vid": VID, "name": {"type": "string", "pattern": NAME, "maxLength": 32}, "tenant": {"type": "string"},
             "vrf": VRF_NAME, "l2vni": VNI, "rd": COMMUNITY, "route_targets": RT_SET,
             "ports": _list(IFNAME, minItems=1)})
SVI = _obj(["vlan", "vrf", "ip_address", "anycast_mac"],
           {"vlan": VID, "vrf": VRF_NAME, "ip_address": IP_PREFIX, "anycast_mac": MAC})
ACCESS_PORT = _obj(["interface", "vlan", "tenant"], {"interface": IFNAME, "vlan": VID, "tenant": {"type": "string"}})
VXLAN = _obj(["source_ip", "udp_port", "vlan_vnis", "vrf_vnis"],
             {"source_ip": IP, "udp_port": {"type": "integer", "minimum": 1, "maximum": 65535},
              "vlan_vnis": _list(_obj(["vlan", "vni"], {"vlan": VID, "vni": VNI})),
              "vrf_vnis": _list(_obj(["vrf", "vni"], {"vrf": VRF_NAME, "vni": VNI}))})
NEIGHBOR = _obj(["ip", "remote_as", "interface"], {"ip": IP, "remote_as": ASN, "interface": IFNAME})
BGP = _obj(["asn", "router_id", "networks", "neighbors", "evpn", "vrfs"],
           {"asn": ASN, "router_id": IP, "networks": _list(IP_PREFIX), "neighbors": _list(NEIGHBOR),
            "evpn": _obj(["advertise_all_vni", "vnis"],
                         {"advertise_all_vni": {"type": "boolean"},
                          "vnis": _list(_obj(["vni", "rd", "route_targets"],
                                             {"vni": VNI, "rd": COMMUNITY, "route_targets": RT_SET}))}),
            "vrfs": _list(_obj(["name", "rd", "route_targets", "advertise_ipv4_unicast", "redistribute_connected"],
                               {"name": VRF_NAME, "rd": COMMUNITY, "route_targets": RT_SET,
                                "advertise_ipv4_unicast": {"type": "boolean"},
                                "redistribute_connected": {"type": "boolean"}}))})
SWITCH_CONFIG = _obj(
    ["hostname", "platform", "vrf_backend", "router_id", "vtep_ip", "anycast_gateway_mac", "underlay_interfaces",
     "vrfs", "vlans", "svis", "vxlan", "access_ports", "bgp"],
    {"hostname": {"type": "string", "pattern": NAME}, "platform": {"type": "string", "pattern": NAME},
     "vrf_backend": {"enum": BACKENDS}, "router_id": IP, "vtep_ip": IP, "anycast_gateway_mac": MAC,
     "underlay_interfaces": _list(_obj(["name", "ip_address"], {"name": IFNAME, "ip_address": IP_PREFIX})),
     "vrfs": _list(VRF), "vlans": _list(VLAN), "svis": _list(SVI), "vxlan": VXLAN,
     "access_ports": _list(ACCESS_PORT), "bgp": BGP})
STRUCTURED = {"type": "object", "propertyNames": {"pattern": NAME}, "additionalProperties": SWITCH_CONFIG}

# SONiC config_db.json: the tables the SONiC renderer emits, keys and value formats as in SONiC's YANG
# models (sonic-vlan, sonic-vrf, sonic-vxlan, sonic-interface, sonic-loopback-interface, sonic-sag) and
# the frrcfgd BGP tables (sonic-bgp-global, sonic-bgp-neighbor). config_db values are all strings.
_S = {"type": "string"}
_NUM = {"type": "string", "pattern": r"^[0-9]+$"}
_BOOL = {"enum": ["true", "false"]}
_VLAN = r"Vlan([1-9][0-9]{0,2}|[1-3][0-9]{3}|40[0-8][0-9]|409[0-4])"
_SVRF = r"Vrf[A-Za-z0-9_-]+"
_ETH = r"Ethernet[0-9]+"
_PFX = rf"{IPV4}/([0-9]|[12][0-9]|3[0-2])"
_RT = rf"([0-9]{{1,10}}|{IPV4}):[0-9]{{1,10}}"
_RT_ROW = _obj(["route-target-type"], {"route-target-type": {"enum": ["import", "export", "both"]}})


def _table(key: str, row: dict) -> dict:
    return {"type": "object", "propertyNames": {"pattern": f"^({key})$"}, "additionalProperties": row}


EMPTY = _obj([], {})
SONIC = _obj(
    ["DEVICE_METADATA", "LOOPBACK_INTERFACE", "INTERFACE", "VXLAN_TUNNEL", "VXLAN_EVPN_NVO", "SAG",
     "BGP_GLOBALS", "BGP_GLOBALS_AF", "BGP_NEIGHBOR", "BGP_NEIGHBOR_AF"],
    {"DEVICE_METADATA": _table("localhost", _obj(["hostname", "bgp_asn", "docker_routing_config_mode"], {
        "hostname": _S, "bgp_asn": _NUM, "docker_routing_config_mode": {"enum": ["unified", "split-unified"]},
        "type": _S})),
     "LOOPBACK_INTERFACE": _table(rf"Loopback[0-9]+|Loopback[0-9]+\|{_PFX}", EMPTY),
     "INTERFACE": _table(rf"{_ETH}|{_ETH}\|{_PFX}", EMPTY),
     "VLAN": _table(_VLAN, _obj(["vlanid"], {"vlanid": {"type": "string", "pattern": r"^[0-9]{1,4}$"},
                                            "description": _S})),
     "VLAN_MEMBER": _table(rf"{_VLAN}\|{_ETH}", _obj(["tagging_mode"],
                                                     {"tagging_mode": {"enum": ["tagged", "untagged"]}})),
     "VLAN_INTERFACE": _table(rf"{_VLAN}|{_VLAN}\|{_PFX}", _obj([], {
         "vrf_name": {"type": "string", "pattern": f"^{_SVRF}$"}, "static_anycast_gateway": _BOOL})),
     "VRF": _table(_SVRF, _obj([], {"vni": _NUM})),
     "VXLAN_TUNNEL": _table("[A-Za-z0-9_-]+", _obj(["src_ip"], {"src_ip": IP})),
     "VXLAN_EVPN_NVO": _table("[A-Za-z0-9_-]+", _obj(["source_vtep"], {"source_vtep": _S})),
     "VXLAN_TUNNEL_MAP": _table(rf"[A-Za-z0-9_-]+\|map_[0-9]+_{_VLAN}", _obj(["vni", "vlan"], {
         "vni": _NUM, "vlan": {"type": "string", "pattern": f"^{_VLAN}$"}})),
     "SAG": _table("GLOBAL", _obj(["gateway_mac"], {"gateway_mac": MAC})),
     "BGP_GLOBALS": _table(f"default|{_SVRF}", _obj(["local_asn", "router_id"], {
         "local_asn": _NUM, "router_id": IP, "ebgp_requires_policy": _BOOL})),
     "BGP_GLOBALS_AF": _table(f"(default|{_SVRF})\\|(ipv4_unicast|l2vpn_evpn)", _obj([], {
         "advertise-all-vni": _BOOL, "advertise-ipv4-unicast": _BOOL, "route-distinguisher": _S})),
     "BGP_GLOBALS_AF_NETWORK": _table(rf"default\|ipv4_unicast\|{_PFX}", EMPTY),
     "BGP_GLOBALS_EVPN_RT": _table(rf"{_SVRF}\|l2vpn_evpn\|{_RT}", _RT_ROW),
     "BGP_GLOBALS_EVPN_VNI": _table(r"default\|l2vpn_evpn\|[0-9]+", _obj(["route-distinguisher"], {
         "route-distinguisher": _S})),
     "BGP_GLOBALS_EVPN_VNI_RT": _table(rf"default\|l2vpn_evpn\|[0-9]+\|{_RT}", _RT_ROW),
     "BGP_NEIGHBOR": _table(rf"default\|{IPV4}", _obj(["asn"], {"asn": _NUM, "admin_status": {"enum": ["up", "down"]},
                                                              "local_addr": _S})),
     "BGP_NEIGHBOR_AF": _table(rf"default\|{IPV4}\|(ipv4_unicast|l2vpn_evpn)", _obj(["admin_status"], {
         "admin_status": _BOOL})),
     "ROUTE_REDISTRIBUTE": _table(rf"{_SVRF}\|connected\|bgp\|ipv4", EMPTY)})


path_text = schema.path_text
errors = schema.errors
