#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/slurm_config.py (the templates are files
# of the collection, which a module's payload does not carry).

from __future__ import annotations

DOCUMENTATION = r"""
module: slurm_config
short_description: Compute and render a Slurm cluster's config from its nodes' NetBox facts (AVD style)
description:
  - From O(cluster) (settings) and O(nodes) (each node's NetBox facts as the gpucloud_netbox inventory gives them,
    never facts gathered on the node) computes the structured config of slurm.conf, gres.conf, topology.conf and
    cgroup.conf, validates it against its schema, renders it and checks the rendered files the way slurmctld reads
    them.
  - "Topology: C(tree) from leaf/spine (site, spine plane, leaf, nodes), with the NVLink domains of NVL72-class racks
    as the level below their leaf; C(block) (Slurm 23.11+) with one block per NVLink domain; C(auto) takes block when
    every node shares an NVLink domain with another and the Slurm version allows the blocks' sizes, else tree."
  - "GRES: one C(gpu) GRES per node, Type from the GPU model (C(H100-SXM5-80GB) is C(h100-sxm5-80gb)), File from the
    vendor's device files (NVIDIA C(/dev/nvidiaN), AMD C(/dev/dri/renderD128+N), Intel Gaudi C(/dev/accel/accelN)),
    Flags naming the vendor's environment variable."
  - A partition per tenant project (device custom field C(project)); nodes without one go to the default partition.
  - From O(previous_conf) it tells which nodes were added or removed and how to apply the change (RV(config.apply)) -
    before Slurm 23.11 a changed node set needs slurmctld restarted (a reconfigure stops it), anything else is a
    reconfigure.
  - Every problem of the input, the structured config or the rendered files is reported at once, each naming its
    field. Changes nothing anywhere, so it is check-mode safe and never reports changed.
version_added: "0.6.0"
author: gpucloud contributors
options:
  cluster:
    description: The cluster's settings (C(module_utils/slurm_schema.py), C(CLUSTER)), e.g. name, Slurm version,
      controllers, ports, paths, topology, plugins, health check, accounting and extra options.
    type: dict
    required: true
  nodes:
    description: One entry per node (C(module_utils/slurm_schema.py), C(NODE)) with name, address, cpus, memory_gb,
      gpu (vendor, model, count), project, site, location, leaf, nvlink_domain and optionally its own slurmd port and
      device root (several slurmd on one host).
    type: list
    elements: dict
    required: true
  topology:
    description: What the inventory does not carry, as M(gpucloud.infra.cluster_topology_info) returns it (spines per
      leaf, pod per location). Without spines, the pod or else the site is the level above the leaves.
    type: dict
    default: {}
  previous_conf:
    description: The text of the slurm.conf in place now, to tell which nodes change; empty for a first deployment.
    type: str
attributes:
  action:
    support: full
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Compute the cluster's Slurm config
  gpucloud.infra.slurm_config:
    cluster:
      name: acme-train
      version: "22.05.8"
      controllers: [{name: gpu-dc1-r01-k01-n01, hostname: gpu-dc1-r01-k01-n01, address: 10.1.0.11}]
      slurmctld_port: 6817
      slurmd_port: 6818
      paths: {conf_dir: /etc/slurm, state_save: /var/spool/slurmctld, slurmd_spool: /var/spool/slurmd,
              log_dir: /var/log/slurm, run_dir: /run/slurm, munge_socket: /run/munge/munge.socket.2}
      slurm_user: slurm
      configless: true
      topology: auto
      proctrack: proctrack/cgroup
      task_plugin: task/cgroup,task/affinity
      config_overrides: false
      partition_access: none
      default_partition: batch
      memory_fraction: 0.95
    nodes:
      - {name: gpu-dc1-r01-k01-n01, address: 10.1.0.11, cpus: 112, memory_gb: 2048, project: train,
         gpu: {vendor: NVIDIA, model: H100-SXM5-80GB, count: 8}, site: dc1, leaf: leaf-dc1-r01}
    topology: "{{ topology.topology }}"
  register: slurm
"""

RETURN = r"""
config:
  description: The structured config (C(module_utils/slurm_schema.py), C(STRUCTURED)), with C(node_names),
    C(nodes_added), C(nodes_removed) and C(apply) (C(reconfigure) or C(restart)).
  returned: success
  type: dict
files:
  description: The rendered files by name (slurm.conf, gres.conf, cgroup.conf and, with a topology, topology.conf).
  returned: success
  type: dict
  sample: {slurm.conf: "ClusterName=acme-train\n...", gres.conf: "NodeName=gpu-dc1-r01-k01-n01 Name=gpu ..."}
errors:
  description: Every problem found, each naming its field or its file and line (on failure).
  returned: failure
  type: list
  elements: str
"""
