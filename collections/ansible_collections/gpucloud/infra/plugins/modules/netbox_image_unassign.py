#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: netbox_image_unassign
short_description: Clear the golden-image assignment (the platform) of NetBox devices
description:
  - A device runs the golden image its NetBox platform names (see M(gpucloud.infra.netbox_image)). This module
    clears the platform of the named devices, so that nothing says any more which image they run and the next
    image stage re-images them (e.g. after the node was wiped for the free pool).
  - One bulk PATCH for the devices that still have a platform; no change for those that have none. Every name
    must exist in NetBox, checked before anything is written.
  - Idempotent; check and diff modes are supported. In check mode it is also the read of what each device has
    (RV(platforms)).
version_added: "0.4.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  devices:
    description: Names of the devices whose image assignment is cleared.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Forget which image the wiped nodes ran
  gpucloud.infra.netbox_image_unassign:
    devices: "{{ ansible_play_hosts }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
platforms:
  description: Each device's platform slug before the call (null when it had none).
  returned: always
  type: dict
  sample: {gpu-dc1-r01-k01-n01: gpu-debian12-20261123-1, gpu-dc1-r01-k01-n02: null}
unassigned:
  description: The devices whose platform was (or, in check mode, would be) cleared.
  returned: always
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_image


def main():
    module = AnsibleModule(
        argument_spec=dict(**netbox_api.CONNECTION_ARGS, devices=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        result = netbox_image.unassign(netbox_api.from_params(module.params), module.params["devices"],
                                       module.check_mode)
    except netbox_image.ImageError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
