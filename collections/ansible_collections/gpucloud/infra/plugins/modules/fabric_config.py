#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/fabric_config.py (the renderers'
# templates are files of the collection, which a module's payload does not carry).

from __future__ import annotations

DOCUMENTATION = r"""
module: fabric_config
short_description: Compute and render the tenant fabric's per-switch config (AVD style)
description:
  - From O(inputs) (fabric settings and underlay, tenant allocations, access ports; what
    M(gpucloud.infra.fabric_inputs) returns) computes each switch's platform-neutral structured config (VRFs, VLANs,
    anycast-gateway SVIs, VNIs, access ports, BGP EVPN), validates it against its schema and renders it with the
    switch's platform renderer (C(module_utils/fabric_templates/<platform>/)).
  - "Renderers: C(linux) (ifupdown2 C(interfaces) and FRR C(frr.conf), Cumulus style), C(sonic) (C(config_db.json)),
    C(eos) (C(startup-config)). Output of platforms with an offline check (C(sonic): the config_db schema; C(eos):
    the command grammar) is checked, and a failing check fails the task."
  - Every problem of the inputs, the structured config or the rendered output is reported at once, each naming its
    field (e.g. C(attachments[3].vlan) or C(fabric.switches.leaf1.asn)).
  - Changes nothing anywhere (it only computes, on the controller), so it is check-mode safe and never reports
    changed.
version_added: "0.4.0"
author: gpucloud contributors
options:
  inputs:
    description: The fabric config's input (C(module_utils/fabric_schema.py), C(INPUT)), e.g. the C(inputs)
      M(gpucloud.infra.fabric_inputs) returns.
    type: dict
    required: true
  platform:
    description: Render every switch for this platform instead of its own (the same tenants as SONiC or EOS config).
    type: str
  switches:
    description: Return only these switches (default all of O(inputs)); names not in the inputs fail.
    type: list
    elements: str
attributes:
  action:
    support: full
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the inputs of site dc1
  gpucloud.infra.fabric_inputs:
    site: dc1
  register: fabric

- name: Per-switch config of the Linux leaves
  gpucloud.infra.fabric_config:
    inputs: "{{ fabric.inputs }}"
  register: leaf_config

- name: The same tenants as SONiC config_db.json, for one leaf
  gpucloud.infra.fabric_config:
    inputs: "{{ fabric.inputs }}"
    platform: sonic
    switches: [leaf-dc1-r01]
  register: sonic_config
"""

RETURN = r"""
switches:
  description: Per switch name its platform, structured config and rendered files.
  returned: success
  type: dict
  sample:
    leaf-dc1-r01:
      platform: linux
      config: {hostname: leaf-dc1-r01, platform: linux, vrfs: [], vlans: [], svis: [], access_ports: []}
      files: {interfaces: "auto lo\n...", frr.conf: "frr defaults datacenter\n..."}
errors:
  description: Every problem found, each naming its field (on failure).
  returned: failure
  type: list
  elements: str
"""
