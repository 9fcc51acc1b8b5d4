# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.redfish_drives: list a system's drives, or SecureErase them, from the controller."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.action.bios_settings import CONNECTION, redfish_session
from ansible_collections.gpucloud.infra.plugins.module_utils import redfish_drives

ARGUMENT_SPEC = dict(
    CONNECTION,
    secure_erase=dict(type="bool", default=False),
    unerasable=dict(type="str", default="fail", choices=["fail", "warn"]),
    erase_timeout=dict(type="int", default=3600),
    poll_interval=dict(type="float", default=5.0),
)


def describe(drive: dict) -> str:
    return f"{drive['name']} ({drive['uri']}): {drive['reason']}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        with redfish_session(args) as client:
            if args["secure_erase"]:
                outcome = redfish_drives.secure_erase(client, self._task.check_mode, args["erase_timeout"],
                                                      args["poll_interval"])
            else:
                outcome = redfish_drives.listing(client)
        result.update(outcome)
        if not args["secure_erase"]:
            return result
        warnings = result.setdefault("warnings", [])
        if not outcome["drives"]:
            warnings.append(f"no erasable drives: {outcome['no_drives_reason']}")
        if outcome["unerasable"]:
            text = (f"{len(outcome['unerasable'])} drive(s) could not be erased: "
                    + "; ".join(describe(d) for d in outcome["unerasable"]))
            if args["unerasable"] == "fail":
                raise AnsibleActionFail(text, result=result)
            warnings.append(text)
        if not warnings:
            del result["warnings"]
        return result
