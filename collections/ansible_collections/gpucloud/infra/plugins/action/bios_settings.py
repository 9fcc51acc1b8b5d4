# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.bios_settings: runs on the controller, no module subprocess per host.

The work is in module_utils/bios_apply.py (read, compare, act); this file validates the task's
arguments and turns the outcome into a task result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.module_utils import bios_apply, bios_profiles
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish, RedfishError

CONNECTION = dict(
    bmc_address=dict(type="str", required=True),
    bmc_port=dict(type="int", default=443),
    username=dict(type="str", required=True),
    password=dict(type="str", required=True, no_log=True),
    ca_path=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="float", default=30.0),
)
ARGUMENT_SPEC = dict(
    CONNECTION,
    attributes=dict(type="dict", default={}),
    profile=dict(type="str"),
    features=dict(type="list", elements="str", default=[], choices=["sriov", "iommu"]),
    vendor=dict(type="str", default="auto", choices=["auto", *bios_profiles.VENDORS]),
    overrides=dict(type="dict", default={}),
    apply_time=dict(type="str", default="OnReset", choices=list(bios_apply.APPLY_TIMES)),
    maintenance_window=dict(type="dict", options=dict(start=dict(type="str", required=True),
                                                      duration=dict(type="int", default=3600))),
    reboot=dict(type="str", default="never", choices=["never", "when_required"]),
    reboot_timeout=dict(type="int", default=900),
)


def client_for(args: dict) -> Redfish:
    verify = args["ca_path"] if args.get("ca_path") and args["validate_certs"] else args["validate_certs"]
    return Redfish(args["bmc_address"], args["username"], args["password"], port=args["bmc_port"], verify=verify,
                   timeout=args["timeout"])


@contextlib.contextmanager
def redfish_session(args: dict) -> Iterator[Redfish]:
    """A client for the task's BMC, closed afterwards; a Redfish error fails the task with its one-line reason."""
    client = client_for(args)
    try:
        yield client
    except RedfishError as exc:
        raise AnsibleActionFail(str(exc)) from None
    finally:
        client.close()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC,
                                              required_one_of=[("attributes", "profile")])
        result = super().run(tmp, task_vars)
        client = client_for(args)
        try:
            outcome = bios_apply.run(client, args, check_mode=self._task.check_mode)
        except bios_apply.BiosError as exc:
            raise AnsibleActionFail(str(exc), result=exc.details) from None
        except (RedfishError, bios_profiles.ProfileError) as exc:
            raise AnsibleActionFail(str(exc)) from None
        finally:
            client.close()
        diff = outcome.pop("diff")
        result.update(outcome)
        if self._task.diff:
            result["diff"] = diff
        for intent in outcome["unsupported_intents"]:
            result.setdefault("warnings", []).append(
                f"intent {intent!r} has no BIOS attribute on this {outcome['vendor']} platform; not applied")
        return result
