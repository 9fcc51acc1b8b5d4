#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: netbox_image
short_description: Record a golden OS image in NetBox and assign it to devices
description:
  - Records a golden image (the manifest C(golden_image) writes) as NetBox platforms; a family platform named after
    the image (slug O(manifest.name)) is the parent of one platform per version (slug C(<name>-<version>), dots as
    dashes) whose custom fields C(image_version), C(image_build_key), C(image_sha256) and C(image_manifest) carry
    the build.
  - A Platform is NetBox's model for the software a device runs, so assigning the image sets each device's
    C(platform); the device list, filters and device page then show which node should run which image, and the
    gpucloud inventory plugin exports it as hostvar C(platform).
  - Devices are chosen by name (O(devices)) and/or by NetBox filter parameters (O(device_filter)); the ones whose
    platform differs are updated in one bulk PATCH.
  - Idempotent (a second run reports no change); check and diff modes are supported. The manifest is validated
    first and every missing or invalid field is reported at once, before anything is sent to NetBox.
  - O(state=absent) removes a version (or, without O(version), the family with every version), and refuses
    while a device or virtual machine still uses one of them.
version_added: "0.3.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  state:
    description: Whether the image should be recorded (and assigned) or removed.
    type: str
    choices: [present, absent]
    default: present
  manifest:
    description: The image manifest itself (as written by golden_image). One of O(manifest) or O(manifest_path)
      is needed with O(state=present).
    type: dict
  manifest_path:
    description: Path of a C(<name>-<version>.manifest.json) file, read where the module runs.
    type: path
  name:
    description: Image (family) name, for O(state=absent); taken from the manifest when one is given.
    type: str
  version:
    description: Image version, for O(state=absent); without it the whole family is removed.
    type: str
  devices:
    description: Names of the devices that should run this image. Every name must exist in NetBox.
    type: list
    elements: str
    default: []
  device_filter:
    description:
      - "NetBox device filter parameters choosing the devices that should run this image, e.g.
        C({role: gpu-server, device_type: hgx-h100-8gpu}) or C({tenant: acme, site: dc1})."
      - Combined with O(devices) (union).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Record the image and assign it to every H100 server
  gpucloud.infra.netbox_image:
    manifest_path: /var/lib/gpucloud/images/gpu-debian12-20261123.1.manifest.json
    device_filter:
      role: gpu-server
      device_type: hgx-h100-8gpu
  delegate_to: localhost
  run_once: true

- name: Assign it to two named nodes
  gpucloud.infra.netbox_image:
    manifest: "{{ lookup('ansible.builtin.file', 'gpu-debian12-20261123.1.manifest.json') | from_json }}"
    devices: [gpu-dc1-r01-k01-n01, gpu-dc1-r01-k01-n02]

- name: Retire a version (fails while devices still run it)
  gpucloud.infra.netbox_image:
    state: absent
    name: gpu-debian12
    version: "20261001.1"
"""

RETURN = r"""
platform:
  description: Slug of the version platform (O(state=present)), or of what was asked to be removed.
  returned: always
  type: str
  sample: gpu-debian12-20261123-1
family:
  description: Slug of the family platform.
  returned: state=present
  type: str
platform_id:
  description: NetBox id of the version platform; null in check mode before it exists.
  returned: state=present
  type: int
devices:
  description: Every device chosen by O(devices) and O(device_filter).
  returned: state=present
  type: list
  elements: str
assigned:
  description: The devices whose platform was (or, in check mode, would be) changed.
  returned: state=present
  type: list
  elements: str
removed:
  description: Slugs of the platforms removed (or that would be).
  returned: state=absent
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_image


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            state=dict(type="str", default="present", choices=["present", "absent"]),
            manifest=dict(type="dict"),
            manifest_path=dict(type="path"),
            name=dict(type="str"),
            version=dict(type="str"),
            devices=dict(type="list", elements="str", default=[]),
            device_filter=dict(type="dict", default={}),
        ),
        mutually_exclusive=[("manifest", "manifest_path")],
        required_if=[("state", "present", ("manifest", "manifest_path"), True)],
        supports_check_mode=True,
    )
    p = module.params
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        manifest = netbox_image.load_manifest(p["manifest_path"]) if p["manifest_path"] else p["manifest"]
        name = p["name"] or (manifest or {}).get("name")
        if p["state"] == "absent" and not name:
            raise netbox_image.ImageError("state=absent needs name (or a manifest)")
        nb = netbox_api.from_params(module.params)
        if p["state"] == "present":
            result = netbox_image.present(nb, manifest, p["devices"], p["device_filter"], module.check_mode)
        else:
            version = p["version"] or (manifest or {}).get("version")
            result = netbox_image.absent(nb, name, version, module.check_mode)
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
