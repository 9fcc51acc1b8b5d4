#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/redfish_facts.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: redfish_facts
short_description: Read a server's identity, BIOS version, power and boot state and PCIe/GPU devices over Redfish
description:
  - Model, serial, UUID, BIOS version, power state, boot override settings, processor and memory summary, and the
    PCIe devices (with GPUs flagged) where the BMC exposes them.
  - Runs on the controller as an action plugin; read-only, so check mode is the same run.
version_added: "0.2.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action:
    support: full
seealso:
  - module: gpucloud.infra.bios_settings
  - module: gpucloud.infra.redfish_boot
"""

EXAMPLES = r"""
- name: Read what the BMC reports
  gpucloud.infra.redfish_facts:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ bmc_password }}"
  register: bmc
"""

RETURN = r"""
redfish:
  description: What the BMC reports.
  type: dict
  returned: success
  contains:
    vendor: {description: Detected vendor (dell, hpe, supermicro, lenovo, generic)., type: str}
    model: {description: System model., type: str}
    serial: {description: Serial number., type: str}
    bios_version: {description: BIOS version., type: str}
    power_state: {description: Power state., type: str}
    boot: {description: Boot override target, enablement, mode and allowed targets., type: dict}
    pcie_devices: {description: PCIe devices, each with is_gpu., type: list, elements: dict}
    gpus: {description: The PCIe devices that are GPUs., type: list, elements: dict}
"""
