# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.image_drift: pure comparison (or one NetBox read) on the controller."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.module_utils import image_drift, netbox_api

ARGUMENT_SPEC = {
    "manifest": {"type": "dict"},
    "facts": {"type": "dict"},
    "platforms": {"type": "list", "elements": "str"},
    "fail_on": {"type": "list", "elements": "str", "default": list(image_drift.DRIFT_SEVERITIES),
                "choices": list(image_drift.SEVERITIES)},
    "url": {"type": "str"},
    "token": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC,
                                              mutually_exclusive=[("platforms", "manifest"), ("platforms", "facts")],
                                              required_one_of=[("platforms", "facts")])
        result = super().run(tmp, task_vars)
        result["changed"] = False
        if args["platforms"] is not None:
            result.update(self._fetch(args))
        else:
            result.update(self._compare(args))
        return result

    @staticmethod
    def _compare(args) -> dict:
        manifest = args["manifest"]
        if manifest is None:
            return {"status": "no_image", "drifted": False, "findings": []}
        errors = image_drift.validate_manifest(manifest)
        if errors:
            raise AnsibleActionFail(f"manifest is invalid: {'; '.join(errors)}")
        findings = image_drift.compare(manifest, args["facts"])
        drifted = image_drift.drifted(findings, args["fail_on"])
        return {"status": "drift" if drifted else "in_sync", "drifted": drifted, "findings": findings}

    @staticmethod
    def _fetch(args) -> dict:
        if not netbox_api.HAS_REQUESTS:
            raise AnsibleActionFail("image_drift needs the Python library requests on the controller")
        try:
            nb = netbox_api.NetBox(args["url"] or os.environ.get("NETBOX_URL", ""),
                                   args["token"] or os.environ.get("NETBOX_TOKEN", ""),
                                   verify=args["validate_certs"])
            manifests, problems = image_drift.fetch_manifests(nb, args["platforms"])
        except netbox_api.NetBoxError as exc:
            raise AnsibleActionFail(str(exc)) from None
        return {"manifests": manifests, "problems": problems}
