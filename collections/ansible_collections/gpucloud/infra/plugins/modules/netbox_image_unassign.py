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


def unassign(nb, names: list[str], check_mode: bool) -> dict:
    """Clear the devices' platform (one bulk PATCH); ImageError naming the devices NetBox does not know."""
    names = sorted(set(names))
    rows = [d for start in range(0, len(names), netbox_image.NAMES_PER_QUERY)  # keeps the query string short
            for d in nb.list(netbox_image.DEVICES, name=names[start:start + netbox_image.NAMES_PER_QUERY],
                             fields="id,name,platform")]
    missing = sorted(set(names) - {d["name"] for d in rows})
    if missing:
        raise netbox_image.ImageError(f"devices not in NetBox: {', '.join(missing)}")
    before, after = netbox_image.assign(nb, None, None, rows, check_mode)
    return {"changed": before != after, "platforms": before, "unassigned": sorted(n for n in before if before[n]),
            "diff": {"before": before, "after": after}}


def main():
    module = AnsibleModule(
        argument_spec=dict(**netbox_api.CONNECTION_ARGS, devices=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        result = unassign(netbox_api.from_params(module.params), module.params["devices"], module.check_mode)
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
