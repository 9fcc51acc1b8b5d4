#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_topology_info
short_description: Read the levels above a cluster's leaves from NetBox (spines per leaf, pod per row)
description:
  - Hosts of the gpucloud_netbox inventory carry their site, row (C(location)), leaf switch (C(leaf_switch)) and
    NVLink domain. This reads what they do not carry, for the schedulers' topology - the spines each leaf is cabled
    to (devices of O(spine_roles) at the leaves' sites), and each row's parent location (the pod).
  - Four bulk queries, whatever the number of leaves. Reads only; an unknown leaf fails naming it.
version_added: "0.6.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  leaves:
    description: Leaf switch names (device names in NetBox).
    type: list
    elements: str
    required: true
  locations:
    description: Location slugs (rows) whose pod to read.
    type: list
    elements: str
    default: []
  spine_roles:
    description: Device role slugs of spines.
    type: list
    elements: str
    default: [spine]
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Spines and pods of the cluster's nodes
  gpucloud.infra.cluster_topology_info:
    leaves: "{{ ansible_play_hosts | map('extract', hostvars, 'leaf_switch') | select | unique }}"
    locations: "{{ ansible_play_hosts | map('extract', hostvars, 'location') | select | unique }}"
  delegate_to: localhost
  run_once: true
  register: topology
"""

RETURN = r"""
topology:
  description: Spines per leaf (sorted names) and pod per location (a parent location's slug, or null).
  returned: always
  type: dict
  sample:
    spines: {leaf-dc1-r01: [spine-dc1-1, spine-dc1-2]}
    pods: {dc1-row1: null}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_topology


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            leaves=dict(type="list", elements="str", required=True),
            locations=dict(type="list", elements="str", default=[]),
            spine_roles=dict(type="list", elements="str", default=["spine"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        topology = netbox_topology.read(netbox_api.from_params(p), p["leaves"], p["locations"], p["spine_roles"])
    except netbox_topology.TopologyReadError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, topology=topology)


if __name__ == "__main__":
    main()
