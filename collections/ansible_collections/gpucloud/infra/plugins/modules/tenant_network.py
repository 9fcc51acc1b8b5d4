#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: tenant_network
short_description: Allocate (or release) a tenant's VRF, VLANs, VNIs, prefixes and IB partition key in NetBox
description:
  - Allocates a tenant's isolated networks from the pools of a fabric's VLAN group (O(pool)). The VLAN group's
    C(vid_ranges) are the VLAN pool; its custom fields C(pool_l3vni), C(pool_l2vni), C(pool_ib_pkey) and
    C(pool_evpn_asn) the VNI and partition-key pools and the route-target ASN; the container prefix with role
    C(tenant-pool) described C(tenant subnets of <group name>) (or O(prefix_container)) the subnet pool.
  - "For the tenant it ensures: one VRF C(gpucloud-<tenant>) with RD and import/export route target
    C(<evpn_asn>:<l3vni>) and custom field C(l3vni); one VLAN C(<tenant>-<network>) per network in the VLAN group
    with custom field C(l2vni); one VLAN C(<tenant>-l3vni) in the same group whose VID carries the L3VNI on
    switches that map a VNI through a VLAN (SONiC); one prefix per network VLAN carved from the container,
    assigned the VRF, the VLAN and the tenant; and the tenant's custom field C(ib_pkey)."
  - The returned RV(allocation) is one item of the fabric config's C(tenants) input as it is (see
    C(module_utils/fabric_schema.py), C(TENANT)).
  - Idempotent. What the tenant already holds is read first and kept; only missing pieces are allocated, so the
    same tenant always gets the same allocation. Check and diff modes are supported.
  - Safe under concurrency. NetBox's uniqueness is the arbiter (VLAN VID and name in the group, VRF RD, the unique
    custom fields C(l3vni), C(l2vni) and C(ib_pkey)); a value refused as taken is dropped and another tried.
    Prefixes come from NetBox's available-prefixes endpoint, which NetBox serialises. Concurrent runs for the
    same tenant converge on one VRF (the lowest id), one VLAN per network and one prefix per VLAN.
  - Every pool is checked for room before anything is written; an exhausted pool fails naming the pool, the
    resource, its range and how much of it is in use. If a write fails after that, what this run created is
    deleted again; a re-run continues from what NetBox holds.
  - O(state=absent) releases everything the tenant holds in the pool (prefixes, VLANs, VRF, route targets no
    other VRF uses, the partition key), in dependency order; after a failure, a re-run finishes the release.
version_added: "0.4.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  state:
    description: Whether the tenant should hold its networks, or release them to the pools.
    type: str
    choices: [present, absent]
    default: present
  tenant:
    description: Slug of the NetBox tenant.
    type: str
    required: true
  pool:
    description: Slug of the VLAN group whose pools to allocate from.
    type: str
    default: tenant-fabric
  vlans:
    description:
      - "The tenant's networks, for O(state=present). A count N gives networks C(net1) .. C(netN); a list names
        them, e.g. C([{name: compute}, {name: storage}]). At most 64, names at most 32 characters; C(l3vni) is
        reserved (the L3VNI VLAN's)."
      - Networks the tenant already holds but that are not listed are kept (and not returned).
    type: raw
    default: 1
  prefix_length:
    description: Length of each network's prefix.
    type: int
    default: 24
  prefix_container:
    description: The container prefix to carve from (e.g. C(10.200.0.0/16)) when the pool's is not found by its
      description.
    type: str
attributes:
  check_mode:
    support: full
    details: Reports the values a run would most likely take (the lowest free ones); a real run picks free values
      at random, so they may differ.
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Give acme two networks
  gpucloud.infra.tenant_network:
    tenant: acme
    vlans:
      - name: compute
      - name: storage
  register: acme_net

- name: Four networks with /26 prefixes from another fabric's pools
  gpucloud.infra.tenant_network:
    tenant: globex
    pool: tenant-fabric-b
    vlans: 4
    prefix_length: 26

- name: Release everything initech holds
  gpucloud.infra.tenant_network:
    tenant: initech
    state: absent
"""

RETURN = r"""
tenant_id:
  description: NetBox id of the tenant (for journal entries on it).
  returned: always
  type: int
  sample: 7
allocation:
  description:
    - The tenant's allocation (after the run; in check mode what would be allocated; with O(state=absent) the
      empty allocation, all values null).
    - An item of the fabric config's C(tenants) input as it is (C(fabric_schema.TENANT)).
  returned: always
  type: dict
  contains:
    tenant: {description: Tenant slug., type: str, sample: acme}
    vrf:
      description: The VRF's name on the switches, C(vrf<l3vni>) (a Linux VRF device holds at most 15 characters;
        in NetBox the VRF is named C(gpucloud-<tenant>)).
      type: str
      sample: vrf50017
    rd: {description: Route distinguisher., type: str, sample: "65000:50017"}
    route_targets:
      description: Import and export route targets.
      type: dict
      sample: {import: ["65000:50017"], export: ["65000:50017"]}
    l3vni: {description: The VRF's L3VNI., type: int, sample: 50017}
    l3vni_vid:
      description: VID of the tenant's L3VNI VLAN C(<tenant>-l3vni), from the pool's VLAN range.
      type: int
      sample: 2417
    vlans:
      description: One entry per requested network, in the order requested;
        the NetBox VLAN is named C(<tenant>-<name>).
      type: list
      elements: dict
      sample: [{name: compute, vid: 1203, l2vni: 101733, prefix: 10.200.7.0/24, gateway: 10.200.7.1}]
    ib_pkey: {description: The tenant's InfiniBand partition key., type: str, sample: "0x1a2b"}
released:
  description: What was (or in check mode would be) released.
  returned: state=absent
  type: dict
  sample: {prefixes: [10.200.7.0/24], vlans: [1203, 2417], vrfs: [gpucloud-acme], ib_pkey: "0x1a2b"}
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, tenant_network


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            state=dict(type="str", default="present", choices=["present", "absent"]),
            tenant=dict(type="str", required=True),
            pool=dict(type="str", default="tenant-fabric"),
            vlans=dict(type="raw", default=1),
            prefix_length=dict(type="int", default=24),
            prefix_container=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    vlans = p["vlans"]
    if isinstance(vlans, str) and vlans.isdigit():  # vlans: "{{ n }}" arrives as a string
        vlans = int(vlans)
    try:
        errors = tenant_network.validate({**p, "vlans": vlans})
        if errors:
            raise tenant_network.TenantNetworkError(f"{len(errors)} invalid option(s): " + "; ".join(errors),
                                                    errors)
        nb = netbox_api.from_params(p)
        if p["state"] == "present":
            result = tenant_network.present(nb, p["tenant"], p["pool"], vlans, p["prefix_length"],
                                            module.check_mode, p["prefix_container"])
        else:
            result = tenant_network.absent(nb, p["tenant"], p["pool"], module.check_mode, p["prefix_container"])
    except tenant_network.TenantNetworkError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
