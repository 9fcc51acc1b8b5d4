#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/image_drift.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: image_drift
short_description: Compare a node's facts with its image manifest, or read image manifests from NetBox
description:
  - With O(facts) (from M(gpucloud.infra.node_facts)) and O(manifest) (the image manifest JSON that golden_image
    writes), lists every difference as a finding C({field, expected, actual, severity}). Compared are the image
    identity (C(/etc/gpucloud/image.json) build key), the kernel release, every kernel parameter of the manifest's
    cmdline, THP, the hugepage count of the manifest's page size, the CPU governor, IOMMU (when the cmdline turns
    it on), the GPU stack's release and package versions, and the GPU driver the GPUs run.
  - "Severities: C(critical) for the software stack (image, kernel, GPU packages, loaded driver), C(warning) for
    tuning, C(not_applicable) for what the node cannot show (no cpufreq in a VM; never drift)."
  - With O(manifest) null the node has no image assigned; RV(status) is C(no_image) and nothing is compared.
  - With O(platforms) instead, reads the C(image_manifest) custom field of those NetBox platforms in one request
    and returns RV(manifests); run it once for the play (C(run_once)), not per host.
  - Runs on the controller; changes nothing, so check mode is the same run.
version_added: "0.3.0"
author: gpucloud contributors
options:
  facts:
    description: The node's facts, RV(gpucloud.infra.node_facts#module:node_facts) of M(gpucloud.infra.node_facts).
    type: dict
  manifest:
    description: The image manifest the node should run; null when the node has no image assigned.
    type: dict
  fail_on:
    description: Severities that make RV(drifted) true.
    type: list
    elements: str
    choices: [critical, warning, not_applicable]
    default: [critical, warning]
  platforms:
    description: NetBox platform slugs whose image manifests to read (instead of comparing).
    type: list
    elements: str
  url:
    description: NetBox base URL, with O(platforms). Defaults to E(NETBOX_URL).
    type: str
  token:
    description: NetBox API token (read access to platforms), with O(platforms). Defaults to E(NETBOX_TOKEN).
    type: str
  validate_certs:
    description: Verify NetBox's TLS certificate.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action:
    support: full
seealso:
  - module: gpucloud.infra.node_facts
  - module: gpucloud.infra.netbox_journal
"""

EXAMPLES = r"""
- name: Read the manifests of the images the play's nodes run, once
  gpucloud.infra.image_drift:
    platforms: "{{ ansible_play_hosts | map('extract', hostvars, 'platform') | select | unique }}"
  run_once: true
  register: images

- name: Compare this node with its image
  gpucloud.infra.image_drift:
    facts: "{{ node.node_facts }}"
    manifest: "{{ images.manifests[platform].manifest if platform else none }}"
  register: drift
"""

RETURN = r"""
status:
  description: C(in_sync), C(drift), or C(no_image) when O(manifest) is null.
  returned: with O(facts)
  type: str
drifted:
  description: Whether a finding has a severity of O(fail_on).
  returned: with O(facts)
  type: bool
findings:
  description: The differences, most severe first.
  returned: with O(facts)
  type: list
  elements: dict
  contains:
    field:
      description: What differs, e.g. C(thp.enabled), C(cmdline.iommu), C(gpu_stack.nvidia.nccl).
      type: str
    expected:
      description: The manifest's value.
      type: raw
    actual:
      description: The node's value; null when it has none.
      type: raw
    severity:
      description: C(critical), C(warning) or C(not_applicable).
      type: str
  sample: [{field: thp.enabled, expected: always, actual: madvise, severity: warning}]
manifests:
  description: Per platform slug its NetBox C(id), C(name), C(manifest) (null when missing or invalid) and
    C(problem) (why it is null).
  returned: with O(platforms)
  type: dict
problems:
  description: One line per platform that does not exist or has no valid manifest.
  returned: with O(platforms)
  type: list
  elements: str
"""
