#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/redfish_drives.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: redfish_drives
short_description: List a system's drives over Redfish, or secure-erase them
description:
  - Lists every drive the BMC shows under C(Systems/<id>/Storage/<controller>/Drives).
  - With O(secure_erase), posts C(Drive.SecureErase) to each drive that advertises the action (the fastest
    C(SanitizationType) it allows, in order C(CryptographicErase), C(BlockErase), C(Overwrite); an empty body when it
    lists none) and follows the task monitor the BMC answers with until the erase ends.
  - A drive without the action, or whose erase fails, is reported in RV(unerasable); O(unerasable) decides whether
    that fails the task or warns. A BMC that exposes no drives at all (no Storage, or a Storage collection it
    cannot serve; the lab's sushy-tools among them) erases nothing, and the task warns C(no erasable drives) with
    the reason rather than reporting an erase.
  - An erase is an action, not a state; every run with O(secure_erase) and an erasable drive reports a change.
    Callers decide when a node needs it (the node_wipe role does when it still carries a tenant's deployment).
  - In check mode nothing is sent; the result says which drives would be erased.
version_added: "0.4.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
options:
  secure_erase:
    description: Erase the drives; otherwise only list them.
    type: bool
    default: false
  unerasable:
    description: With O(secure_erase), what a drive that cannot be erased does to the task.
    type: str
    choices: [fail, warn]
    default: fail
  erase_timeout:
    description: Seconds to wait for each drive's erase task.
    type: int
    default: 3600
  poll_interval:
    description: Seconds between reads of an erase task.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action:
    support: full
"""

EXAMPLES = r"""
- name: Erase the previous tenant's drives
  gpucloud.infra.redfish_drives:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ lookup('gpucloud.infra.credential', bmc_credential_ref) }}"
    secure_erase: true
    unerasable: warn
  no_log: true
"""

RETURN = r"""
drives:
  description: Every drive listed (C(uri), C(name), C(model), C(serial), C(capacity_bytes), C(protocol),
    C(erasable), C(sanitization)).
  type: list
  elements: dict
  returned: success
erased:
  description: The drives erased (or, in check mode, that would be).
  type: list
  elements: dict
  returned: success
unerasable:
  description: The drives that could not be erased, each with a C(reason).
  type: list
  elements: dict
  returned: success
no_drives_reason:
  description: Why no drive is listed; null when there are drives.
  type: str
  returned: success
"""
