# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.redfish_release: eject every virtual medium, clear the boot override."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.action.bios_settings import CONNECTION, redfish_session
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish_inventory import BOOT_TARGETS
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish_release import release

FALLBACKS = sorted(v for k, v in BOOT_TARGETS.items() if k != "none")
ARGUMENT_SPEC = dict(
    CONNECTION,
    boot_fallback=dict(type="str", default="Pxe", choices=FALLBACKS),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        with redfish_session(args) as client:
            outcome = release(client, args["boot_fallback"], self._task.check_mode)
        diff = outcome.pop("diff")
        result.update(outcome)
        if self._task.diff:
            result["diff"] = diff
        return result
