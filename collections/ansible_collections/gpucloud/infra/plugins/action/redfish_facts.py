# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.redfish_facts: read-only, on the controller."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.action.bios_settings import CONNECTION, redfish_session
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish_inventory import facts


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=CONNECTION)
        result = super().run(tmp, task_vars)
        with redfish_session(args) as client:
            result["redfish"] = facts(client)
        result["changed"] = False
        return result
