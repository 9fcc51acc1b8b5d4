# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.redfish_power: ComputerSystem.Reset from the controller, then wait."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.action.bios_settings import CONNECTION, redfish_session
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish_inventory import POWER_STATES, power, wait_power

RESET_TYPES = ["ForceRestart", "GracefulRestart", "PowerCycle", "ForceOff", "GracefulShutdown"]
ARGUMENT_SPEC = dict(
    CONNECTION,
    state=dict(type="str", required=True, choices=list(POWER_STATES)),
    reset_type=dict(type="str", default="ForceRestart", choices=RESET_TYPES),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    poll_interval=dict(type="float", default=2.0),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        reset_type = args["reset_type"]
        if args["state"] == "off" and reset_type not in ("ForceOff", "GracefulShutdown"):
            reset_type = "ForceOff"
        with redfish_session(args) as client:
            outcome = power(client, args["state"], reset_type, self._task.check_mode)
            current = outcome["power_state_before"]
            if outcome["changed"] and args["wait"] and not self._task.check_mode:
                current = wait_power(client, outcome["wanted"], args["wait_timeout"], args["poll_interval"])
        result.update(changed=outcome["changed"], reset_type=outcome["reset_type"],
                      power_state_before=outcome["power_state_before"], power_state=current)
        if self._task.diff:
            result["diff"] = {"before": {"power_state": outcome["power_state_before"]},
                              "after": {"power_state": outcome["wanted"],
                                        **({"reset": outcome["reset_type"]} if outcome["reset_type"] else {})}}
        return result
