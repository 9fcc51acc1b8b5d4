#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/redfish_boot.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: redfish_boot
short_description: One-time boot to PXE or virtual media over Redfish
description:
  - Sets the system's boot source override (once by default); with O(image), first inserts the ISO as virtual
    CD on the BMC. No change when the override (and the medium) are already set. The golden-image deploy uses it
    before a reset.
version_added: "0.2.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
options:
  target:
    description: Boot source; C(none) clears the override.
    type: str
    required: true
    choices: [bios_setup, cd, hdd, none, pxe, usb]
  once:
    description: Only for the next boot (otherwise continuous).
    type: bool
    default: true
  image:
    description: ISO URL to insert as virtual CD (needed with O(target=cd)).
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  action:
    support: full
"""

EXAMPLES = r"""
- name: PXE-boot once
  gpucloud.infra.redfish_boot:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ bmc_password }}"
    target: pxe

- name: Boot the golden image installer once from virtual media
  gpucloud.infra.redfish_boot:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ bmc_password }}"
    target: cd
    image: https://images.example.com/gpucloud-golden.iso
"""

RETURN = r"""
boot:
  description: The override now set (target, enabled).
  type: dict
  returned: success
media:
  description: The virtual media device used, with O(image).
  type: str
  returned: when image is given
"""
