#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: ib_partition_info
short_description: Read tenants' InfiniBand partitions (P_Key and member port GUIDs) from NetBox
description:
  - Builds the partition model that M(gpucloud.infra.ib_partitions) writes as OpenSM's C(partitions.conf) and as
    UFM REST requests. One partition per tenant, named after the tenant slug, with the tenant's P_Key (tenant custom
    field C(ib_pkey), allocated by M(gpucloud.infra.tenant_network)).
  - Full members are the port GUIDs (device custom field C(ib_port_guids)) of every device whose tenant it is.
    Devices without GUIDs are skipped and listed in RV(skipped).
  - O(limited_members) (storage or subnet-manager ports, by GUID or device name) become limited members of every
    tenant partition; limited members cannot talk to each other, only to the full members.
  - Reads only. Every problem (unknown tenant, tenant without P_Key, malformed GUID) is reported at once.
version_added: "0.4.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  tenants:
    description: Tenant slugs. Default (not given) is every tenant that holds an C(ib_pkey).
    type: list
    elements: str
  limited_members:
    description: Port GUIDs (C(0x) and 16 hex digits) or NetBox device names whose ports are limited members of
      every tenant partition.
    type: list
    elements: str
    default: []
  exclude_tenants:
    description: Tenant slugs to leave out even though they hold an ib_pkey (a tenant being released loses its
      partition before its P_Key goes back to the pool).
    type: list
    elements: str
    default: []
  ipoib:
    description: Mark the tenant partitions IPoIB-capable (OpenSM creates their IPoIB broadcast group).
    type: bool
    default: true
  index0:
    description: Put each tenant's P_Key at index 0 of its ports' P_Key tables (OpenSM C(indx0), UFM C(index0)).
    type: bool
    default: false
  mtu:
    description: IPoIB broadcast group MTU as the IBTA code (1-5; 4 = 2048, 5 = 4096). 0 leaves OpenSM's default.
    type: int
    default: 0
  rate:
    description: IPoIB broadcast group rate as the IBTA code (2-22; 3 = 10 Gb/s, 16 = 100 Gb/s). 0 leaves the default.
    type: int
    default: 0
  sl:
    description: Service level of the IPoIB broadcast group (0-15).
    type: int
    default: 0
  default_ipoib:
    description: Mark the Default partition (0x7fff) IPoIB-capable.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Partitions of every tenant with a P_Key, the storage nodes as limited members
  gpucloud.infra.ib_partition_info:
    limited_members: [storage-dc1-1, "0x1070fd03000000fe"]
  register: ib

- name: Only acme and globex, 4K IPoIB MTU
  gpucloud.infra.ib_partition_info:
    tenants: [acme, globex]
    mtu: 5
"""

RETURN = r"""
model:
  description: The partition model, the input of M(gpucloud.infra.ib_partitions) (C(module_utils/ib_partition.py),
    C(MODEL)); partitions sorted by P_Key, members full first then by GUID.
  returned: always
  type: dict
  sample:
    default: {ipoib: true}
    partitions:
      - name: acme
        tenant: acme
        pkey: "0x0101"
        ipoib: true
        index0: false
        members:
          - {guid: "0x1070fd0300000001", membership: full, device: gpu-dc1-r01-k01-n01}
          - {guid: "0x1070fd03000000fe", membership: limited}
skipped:
  description: The tenants' devices that have no C(ib_port_guids).
  returned: always
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_ib
from ansible_collections.gpucloud.infra.plugins.module_utils.ib_partition import IbPartitionError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            tenants=dict(type="list", elements="str"),
            limited_members=dict(type="list", elements="str", default=[]),
            exclude_tenants=dict(type="list", elements="str", default=[]),
            ipoib=dict(type="bool", default=True),
            index0=dict(type="bool", default=False),
            mtu=dict(type="int", default=0),
            rate=dict(type="int", default=0),
            sl=dict(type="int", default=0),
            default_ipoib=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        result = netbox_ib.read(netbox_api.from_params(p), p["tenants"], p["limited_members"], p["exclude_tenants"],
                                ipoib=p["ipoib"],
                                index0=p["index0"], qos={"mtu": p["mtu"], "rate": p["rate"], "sl": p["sl"]},
                                default_ipoib=p["default_ipoib"])
    except IbPartitionError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
