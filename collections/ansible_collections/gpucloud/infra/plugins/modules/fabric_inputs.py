#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: fabric_inputs
short_description: Read the tenant fabric's config inputs (underlay, tenant allocations, access ports) from NetBox
description:
  - Returns RV(inputs), the input of M(gpucloud.infra.fabric_config) (C(module_utils/fabric_schema.py), C(INPUT)),
    for the switches of O(site) (devices with a role in O(roles)) or the switches named in O(switches).
  - "C(fabric): C(evpn_asn) from the pool's VLAN group (custom field C(pool_evpn_asn)), C(anycast_gateway_mac) and
    C(vxlan_udp_port) from its custom fields C(fabric_anycast_gateway_mac) and C(fabric_vxlan_udp_port) (defaults
    C(00:00:5e:00:01:01) and C(4789)). Per switch: C(asn) from the device's custom field C(bgp_asn); C(router_id)
    and C(vtep_ip) from its IP address with role C(loopback) (on interface C(lo)); C(uplinks) from the cables to
    other fabric switches whose two interfaces hold IPv4 addresses (a /31 each), the peer's address and ASN from
    the far end. Fabric switches are the devices with a role in O(roles) at the switches' sites, so a leaf read on
    its own still learns its spines."
  - "C(tenants): every tenant holding an allocation in O(pool), exactly as M(gpucloud.infra.tenant_network) returns
    it. A switch's files are whole, so every tenant is included whether or not it has ports on these switches."
  - "C(attachments): each interface of a tenant's device cabled to one of the switches (connected cables): the switch
    port, the tenant, and the VLAN: the device interface's untagged VLAN when it is one of the tenant's networks,
    else the tenant's first network (the first allocated). Devices of tenants without a (complete) allocation are
    left out and listed in RV(left_out)."
  - Reads with a few bulk queries (no per-device or per-tenant calls), so it works at thousands of devices.
    Read-only; every problem in NetBox's data (a switch without C(bgp_asn) or loopback, an uplink with one
    address) is reported at once.
version_added: "0.4.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  site:
    description: Slug of the site whose switches (devices with a role in O(roles)) to read. Required unless
      O(switches) is given; with O(switches), each must be at this site.
    type: str
  switches:
    description: Names of the switch devices to read; default every device with a role in O(roles) at O(site).
    type: list
    elements: str
  roles:
    description: Device role slugs of the fabric's switches.
    type: list
    elements: str
    default: [leaf, spine]
  pool:
    description: Slug of the VLAN group holding the tenant pools and the fabric settings.
    type: str
    default: tenant-fabric
  vrf_backend:
    description: How the Linux leaves realise a tenant VRF (C(device) a VRF device, C(netns) FRR's netns backend).
    type: str
    choices: [device, netns]
    default: device
  platform:
    description: The renderer of switches whose NetBox device has no platform.
    type: str
    default: linux
  platform_map:
    description: NetBox platform slug to renderer, for switches whose device has a platform; C(linux-leaf) maps to
      C(linux) unless overridden, and a slug not listed is taken as the renderer's name.
    type: dict
    default: {}
  exclude_tenants:
    description: Tenant slugs to leave out as if they held no allocation (a tenant being released is taken off the
      switches first, and only then are its networks returned to the pools).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the inputs of site dc1's leaves and spines
  gpucloud.infra.fabric_inputs:
    site: dc1
  register: fabric
  delegate_to: localhost
  run_once: true

- name: Two leaves only, FRR's netns VRF backend
  gpucloud.infra.fabric_inputs:
    switches: [leaf-dc1-r01, leaf-dc1-r02]
    vrf_backend: netns
  register: fabric

- name: Render them
  gpucloud.infra.fabric_config:
    inputs: "{{ fabric.inputs }}"
"""

RETURN = r"""
inputs:
  description: The fabric config's input (C(fabric_schema.INPUT)).
  returned: always
  type: dict
  contains:
    fabric:
      description: Fabric settings and the switches' underlay.
      type: dict
      sample:
        name: dc1
        evpn_asn: 65000
        anycast_gateway_mac: "00:00:5e:00:01:01"
        vxlan_udp_port: 4789
        vrf_backend: device
        switches:
          leaf-dc1-r01:
            platform: linux
            asn: 65101
            router_id: 10.255.0.5
            vtep_ip: 10.255.0.5
            uplinks: [{interface: swp63, ip_address: 172.16.0.0/31, peer_ip: 172.16.0.1, peer_asn: 65100}]
    tenants:
      description: The allocations of every tenant holding one, sorted by tenant.
      type: list
      elements: dict
    attachments:
      description: The tenant devices' access ports on the switches, sorted by switch and port.
      type: list
      elements: dict
      sample: [{switch: leaf-dc1-r01, interface: swp1, tenant: acme, vlan: net1}]
left_out:
  description: Tenants whose devices are cabled to the switches but which hold no (complete) allocation, with the
    reason and the ports left out.
  returned: always
  type: list
  elements: dict
  sample: [{tenant: initech, reason: no allocation in the pool (run tenant_network),
            ports: ["leaf-dc1-r01 swp9 (gpu-dc1-r01-k03-n01 eth0)"]}]
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_inputs, netbox_api


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            site=dict(type="str"),
            switches=dict(type="list", elements="str"),
            roles=dict(type="list", elements="str", default=fabric_inputs.FABRIC_ROLES),
            pool=dict(type="str", default="tenant-fabric"),
            vrf_backend=dict(type="str", default="device", choices=["device", "netns"]),
            platform=dict(type="str", default=fabric_inputs.DEFAULT_PLATFORM),
            platform_map=dict(type="dict", default={}),
            exclude_tenants=dict(type="list", elements="str", default=[]),
        ),
        required_one_of=[("site", "switches")],
        supports_check_mode=True,
    )
    p = module.params
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        nb = netbox_api.from_params(p)
        result = fabric_inputs.read(nb, site=p["site"], switches=p["switches"], pool=p["pool"],
                                    vrf_backend=p["vrf_backend"], platform=p["platform"],
                                    platform_map=p["platform_map"], roles=p["roles"],
                                    exclude_tenants=p["exclude_tenants"])
    except fabric_inputs.FabricInputsError as exc:
        module.fail_json(msg=f"{len(exc.errors)} problem(s): " + "; ".join(exc.errors), errors=exc.errors)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings"):  # shown as Ansible warnings (a "warnings" key is Ansible's own)
        module.warn(warning)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
