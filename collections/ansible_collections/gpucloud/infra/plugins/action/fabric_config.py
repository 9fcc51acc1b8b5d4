# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.fabric_config: pure computation on the controller, where the renderers'
templates (module_utils/fabric_templates, not shipped inside a module's payload) are."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config

ARGUMENT_SPEC = {
    "inputs": {"type": "dict", "required": True},
    "platform": {"type": "str"},
    "switches": {"type": "list", "elements": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        result["changed"] = False
        try:
            result["switches"] = fabric_config.switch_files(args["inputs"], args["platform"], args["switches"])
        except fabric_config.FabricConfigError as exc:
            raise AnsibleActionFail(f"{len(exc.errors)} problem(s) in the fabric config: " + "; ".join(exc.errors),
                                    result={"errors": exc.errors}) from None
        return result
