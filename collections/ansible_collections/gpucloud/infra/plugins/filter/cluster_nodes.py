# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""gpucloud.infra.cluster_nodes: the play's hosts as the schedulers' node records, from their NetBox facts."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cluster_nodes
short_description: The given hosts as scheduler node records, from the facts NetBox gave them
description:
  - One record per host from the variables the gpucloud_netbox inventory sets (never facts gathered on the host) -
    name, address (O(address_var), else C(mgmt_ip), else C(ansible_host)), cpus (C(cpu_cores)), memory_gb, gpu
    (vendor, model and count, or null), project, site, location (row), rack, leaf (C(leaf_switch)) and
    nvlink_domain.
  - O(extras) adds more keys from other host variables, e.g. a role's per-host settings.
  - The input of M(gpucloud.infra.slurm_config) and M(gpucloud.infra.k8s_config).
version_added: "0.6.0"
author: gpucloud contributors
options:
  _input:
    description: Inventory host names.
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  address_var:
    description: A host variable that, when set, is the node's address.
    type: str
  extras:
    description: Record key -> host variable, added when the variable is set.
    type: dict
    default: {}
"""

EXAMPLES = r"""
nodes: "{{ ansible_play_hosts_all | gpucloud.infra.cluster_nodes(hostvars) }}"
lab_nodes: >-
  {{ ansible_play_hosts_all | gpucloud.infra.cluster_nodes(hostvars, extras={'port': 'slurm_cluster_node_port'}) }}
"""

RETURN = r"""
_value:
  description: One record per host, in the order given.
  type: list
  elements: dict
"""


def _gpu(hv) -> dict | None:
    count = hv.get("gpu_count")
    if not count:
        return None
    return {"vendor": hv.get("gpu_vendor"), "model": hv.get("gpu_model"), "count": count}


def cluster_nodes(hosts, hostvars, address_var=None, extras=None) -> list[dict]:
    nodes = []
    for host in hosts:
        hv = hostvars[host]
        node = {
            "name": host,
            "address": (hv.get(address_var) if address_var else None) or hv.get("mgmt_ip") or hv.get("ansible_host")
            or host,
            "cpus": hv.get("cpu_cores"), "memory_gb": hv.get("memory_gb"), "gpu": _gpu(hv),
            "project": hv.get("project") or None, "site": hv.get("site"), "location": hv.get("location"),
            "rack": hv.get("rack"), "leaf": hv.get("leaf_switch") or None,
            "nvlink_domain": hv.get("nvlink_domain") or None,
        }
        for key, var in (extras or {}).items():
            if hv.get(var) not in (None, "", 0):
                node[key] = hv.get(var)
        nodes.append(node)
    return nodes


class FilterModule:
    def filters(self):
        return {"cluster_nodes": cluster_nodes}
