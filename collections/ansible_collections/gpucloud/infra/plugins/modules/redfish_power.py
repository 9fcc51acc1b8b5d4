#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/redfish_power.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: redfish_power
short_description: Power a system on or off, or restart it, over Redfish and wait for it
description:
  - Sends C(ComputerSystem.Reset) to the node's BMC. O(state=on) and O(state=off) change nothing when the system
    is already in that power state.
  - O(state=restarted) is an action, not a state, so it always acts (and reports a change) - callers decide
    whether a restart is wanted (the image_deploy role skips nodes that already run the wanted image). A system
    that is on gets O(reset_type); one that is off gets C(On).
  - With O(wait), polls C(PowerState) until the system is in the wanted state (C(On), or C(Off) for O(state=off)).
    That says the BMC powered the host, not that the OS is up; wait for SSH for that.
  - In check mode nothing is sent and the result says what would be.
version_added: "0.3.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.redfish
options:
  state:
    description: Wanted power state, or C(restarted) for a reset.
    type: str
    required: true
    choices: [on, off, restarted]
  reset_type:
    description:
      - ResetType for O(state=restarted) on a running system, and for O(state=off) (C(ForceOff) unless
        C(GracefulShutdown) is given). A BMC that does not offer it gets C(GracefulRestart) or its first offer.
    type: str
    choices: [ForceRestart, GracefulRestart, PowerCycle, ForceOff, GracefulShutdown]
    default: ForceRestart
  wait:
    description: Wait until the system reports the wanted power state.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait with O(wait).
    type: int
    default: 600
  poll_interval:
    description: Seconds between two polls with O(wait).
    type: float
    default: 2.0
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  action:
    support: full
"""

EXAMPLES = r"""
- name: Reset the node into its one-time boot override
  gpucloud.infra.redfish_power:
    bmc_address: "{{ bmc_address }}"
    username: admin
    password: "{{ bmc_password }}"
    state: restarted
    wait_timeout: 900
  no_log: true
"""

RETURN = r"""
reset_type:
  description: The ResetType sent (or that would be, in check mode); null when nothing was needed.
  type: str
  returned: success
power_state_before:
  description: PowerState before the task.
  type: str
  returned: success
power_state:
  description: PowerState at the end (after the wait); the state before when nothing was sent or in check mode.
  type: str
  returned: success
"""
