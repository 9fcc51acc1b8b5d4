#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/bios_settings.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: bios_settings
short_description: Set BIOS attributes over Redfish, from explicit values or a named intent profile
description:
  - Reads the BIOS C(Attributes), the pending C(SettingsObject) and the C(AttributeRegistry) when the BMC has
    one; validates every desired attribute (name, type, allowed values, read-only) and fails listing every bad
    attribute with its allowed values before anything is sent.
  - A value already pending (applies at the next reset) is not a change; the result says C(pending=true).
  - On Dell iDRAC a BIOS configuration job is created for C(OnReset); when one is already queued the task fails
    saying so, because iDRAC accepts no new BIOS changes until it has run.
  - With O(reboot=when_required) the system is reset only when values are still pending, the task waits for it
    to come back and verifies that the current values match.
  - Runs on the controller as an action plugin (one HTTPS session per BMC, no module subprocess), so it scales to
    thousands of BMCs with forks. Supports check mode and diff mode.
version_added: "0.2.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
options:
  attributes:
    description: BIOS attributes by their vendor names; applied after the profile's.
    type: dict
    default: {}
  profile:
    description:
      - Name of an intent profile (a data file in the collection's C(profiles/bios/), e.g. C(gpu_performance)) or
        the path of a profile file. The vendor's attribute names are taken from it.
    type: str
  features:
    description: Optional intents of the profile to include.
    type: list
    elements: str
    choices: [sriov, iommu]
    default: []
  vendor:
    description: Vendor mapping to use; C(auto) detects it from the system's Manufacturer and Model.
    type: str
    choices: [auto, dell, hpe, supermicro, lenovo, generic]
    default: auto
  overrides:
    description: Per-node attribute overrides (from NetBox), applied last.
    type: dict
    default: {}
  apply_time:
    description: When the BMC applies the settings, if it advertises apply times.
    type: str
    choices: [Immediate, OnReset, AtMaintenanceWindowStart, InMaintenanceWindowOnReset]
    default: OnReset
  maintenance_window:
    description: Window for the maintenance-window apply times.
    type: dict
    suboptions:
      start:
        description: Start time, ISO 8601.
        type: str
        required: true
      duration:
        description: Window length in seconds.
        type: int
        default: 3600
  reboot:
    description: Reset the system when values are still pending after the change, then verify.
    type: str
    choices: [never, when_required]
    default: never
  reboot_timeout:
    description: Seconds to wait for the system to come back after a reset.
    type: int
    default: 900
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  action:
    support: full
notes:
  - BMC addresses come from NetBox (the inventory's C(bmc_address)); credentials from the reference stored there.
seealso:
  - module: gpucloud.infra.redfish_facts
"""

EXAMPLES = r"""
- name: Apply the GPU performance profile, rebooting only if needed
  gpucloud.infra.bios_settings:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ lookup('ansible.builtin.env', 'BMC_PASSWORD') }}"
    ca_path: /etc/gpucloud/bmc-ca.pem
    profile: gpu_performance
    features: [sriov]
    overrides: "{{ bios_overrides | default({}) }}"
    reboot: when_required

- name: Show drift without changing anything
  gpucloud.infra.bios_settings:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ bmc_password }}"
    profile: gpu_performance
  check_mode: true
  diff: true
"""

RETURN = r"""
vendor:
  description: Vendor mapping used.
  type: str
  returned: success
changes:
  description: Attributes sent (or that would be sent in check mode), with their desired values.
  type: dict
  returned: success
pending:
  description: True when desired values are pending on the BMC and apply at the next reset.
  type: bool
  returned: success
pending_attributes:
  description: The desired attributes that are pending.
  type: dict
  returned: success
reboot_required:
  description: True when values remain pending after the change.
  type: bool
  returned: changed
rebooted:
  description: Whether the task reset the system.
  type: bool
  returned: success
verified:
  description: Whether current values equal the desired ones.
  type: bool
  returned: success
job:
  description: Dell iDRAC BIOS configuration job (id, state), when one exists or was created.
  type: dict
  returned: success
unsupported_intents:
  description: Profile intents that have no attribute on this vendor's platform.
  type: list
  elements: str
  returned: success
invalid:
  description: On failure, every bad attribute with the reason and the allowed values.
  type: list
  elements: dict
  returned: failure
"""
