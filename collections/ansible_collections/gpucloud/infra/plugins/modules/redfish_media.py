#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/redfish_media.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: redfish_media
short_description: Insert or eject the virtual CD of a BMC over Redfish
description:
  - Inserts an image URL into the BMC's first virtual CD/DVD device (C(VirtualMedia.InsertMedia), found under the
    system or, on older BMCs, under the manager), or ejects it. No change when it already holds that image (or is
    empty).
  - The BMC fetches the URL itself; when it cannot (a wrong URL, an artifact server it cannot reach) the task fails
    with the URL and the BMC's answer.
  - M(gpucloud.infra.redfish_boot) with O(gpucloud.infra.redfish_boot#module:image) inserts and sets the boot
    override in one task; this module is for ejecting, and for inserting without touching the boot order.
version_added: "0.3.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
options:
  state:
    description: Whether the medium should be inserted or ejected.
    type: str
    choices: [inserted, ejected]
    default: inserted
  image:
    description: URL of the image, for O(state=inserted).
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
- name: Eject the deploy medium
  gpucloud.infra.redfish_media:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ bmc_password }}"
    state: ejected
  no_log: true
"""

RETURN = r"""
media:
  description: The virtual media resource used.
  type: str
  returned: success
image:
  description: The image it holds now (null when ejected).
  type: str
  returned: success
inserted:
  description: Whether a medium is inserted now.
  type: bool
  returned: success
"""
