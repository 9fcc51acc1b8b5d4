# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.redfish_boot: one-time boot to PXE or virtual media."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.action.bios_settings import CONNECTION, redfish_session
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish_inventory import (
    BOOT_TARGETS,
    boot_override,
    insert_media,
)

ARGUMENT_SPEC = dict(
    CONNECTION,
    target=dict(type="str", required=True, choices=sorted(BOOT_TARGETS)),
    once=dict(type="bool", default=True),
    image=dict(type="str"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC,
                                              required_if=[("target", "cd", ("image",))])
        result = super().run(tmp, task_vars)
        with redfish_session(args) as client:
            media = insert_media(client, args["image"], self._task.check_mode) if args["image"] else None
            outcome = boot_override(client, args["target"], args["once"], self._task.check_mode)
        result["changed"] = outcome["changed"] or bool(media and media["changed"])
        result["boot"] = outcome["diff"]["after"]
        if media:
            result["media"] = media["media"]
        if self._task.diff:
            result["diff"] = outcome["diff"]
        return result
