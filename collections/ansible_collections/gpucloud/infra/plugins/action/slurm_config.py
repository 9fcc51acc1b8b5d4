# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.slurm_config: pure computation on the controller, where the templates
(module_utils/slurm_templates, not shipped inside a module's payload) are."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.module_utils import slurm_config, slurm_render

ARGUMENT_SPEC = {
    "cluster": {"type": "dict", "required": True},
    "nodes": {"type": "list", "elements": "dict", "required": True},
    "topology": {"type": "dict", "default": {}},
    "previous_conf": {"type": "str"},
}


def previous(text: str | None) -> tuple[list[str] | None, dict | None]:
    """The node names of a slurm.conf already in place, and its global settings with where each node is reached
    (slurm_config.keyed and reach); None for a first deployment."""
    if not text:
        return None, None
    nodes, settings, reached = [], [], {}
    for _line, pairs in slurm_render.parse(text):
        head = pairs[0][0].lower()
        if head == "nodename":
            nodes.append(pairs[0][1])
            reached.update(slurm_config.reach(pairs))
        elif head != "partitionname":
            settings += pairs
    return nodes, {**slurm_config.keyed(settings), **reached}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        result["changed"] = False
        nodes, settings = previous(args["previous_conf"])
        inputs = {"cluster": args["cluster"], "nodes": args["nodes"], "topology": args["topology"],
                  "previous_nodes": nodes, "previous_settings": settings}
        try:
            config = slurm_config.build(inputs)
        except slurm_config.SlurmConfigError as exc:
            raise AnsibleActionFail(f"{len(exc.errors)} problem(s) in the Slurm config: " + "; ".join(exc.errors),
                                    result={"errors": exc.errors}) from None
        files = slurm_render.render(config)
        errors = slurm_render.check(files, config["version"])
        if errors:
            raise AnsibleActionFail(f"{len(errors)} problem(s) in the rendered Slurm files: " + "; ".join(errors),
                                    result={"errors": errors, "files": files})
        result.update(config=config, files=files, warnings=config["warnings"])
        return result
