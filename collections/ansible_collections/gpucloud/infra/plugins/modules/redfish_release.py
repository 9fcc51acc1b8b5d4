#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/redfish_release.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: redfish_release
short_description: Detach a node from its last deployment over Redfish (virtual media and boot override)
description:
  - Ejects every inserted virtual medium of the BMC (each C(VirtualMedia) resource under the system and under every
    manager, not only the first CD as M(gpucloud.infra.redfish_media) does), with C(VirtualMedia.EjectMedia) or,
    where the BMC offers no such action, a PATCH.
  - Clears the boot-source override (C(BootSourceOverrideEnabled=Disabled), target C(None)). A BMC that cannot
    disable an override (it offers no target C(None); sushy-tools always reports C(Continuous)) is set to
    O(boot_fallback) instead, the target a free node boots from.
  - No change when nothing is inserted and no override is in effect. Check and diff modes are supported.
version_added: "0.4.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
options:
  boot_fallback:
    description: Boot target for BMCs that cannot disable the override.
    type: str
    choices: [BiosSetup, Cd, Hdd, Pxe, Usb]
    default: Pxe
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  action:
    support: full
"""

EXAMPLES = r"""
- name: Eject the previous tenant's media and clear the boot override
  gpucloud.infra.redfish_release:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ lookup('gpucloud.infra.credential', bmc_credential_ref) }}"
  no_log: true
"""

RETURN = r"""
ejected:
  description: The media ejected (or, in check mode, that would be), with the image each held.
  type: list
  elements: dict
  returned: success
media:
  description: Every virtual media resource of the BMC.
  type: list
  elements: str
  returned: success
boot:
  description: The boot override now (C(target), C(enabled)).
  type: dict
  returned: success
boot_changed:
  description: Whether the boot override was (or would be) changed.
  type: bool
  returned: success
"""
