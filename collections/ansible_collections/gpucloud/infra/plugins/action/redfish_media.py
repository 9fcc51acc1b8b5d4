# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.redfish_media: insert or eject the BMC's virtual CD, from the controller."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.action.bios_settings import CONNECTION, redfish_session
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish_inventory import eject_media, insert_media

ARGUMENT_SPEC = dict(
    CONNECTION,
    state=dict(type="str", default="inserted", choices=["inserted", "ejected"]),
    image=dict(type="str"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC,
                                              required_if=[("state", "inserted", ("image",))])
        result = super().run(tmp, task_vars)
        with redfish_session(args) as client:
            if args["state"] == "inserted":
                outcome = insert_media(client, args["image"], self._task.check_mode)
            else:
                outcome = eject_media(client, self._task.check_mode)
        result.update(changed=outcome["changed"], media=outcome["media"], image=outcome["diff"]["after"]["image"],
                      inserted=outcome["diff"]["after"]["inserted"])
        if self._task.diff:
            result["diff"] = outcome["diff"]
        return result
