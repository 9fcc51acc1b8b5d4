#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: netbox_image_info
short_description: Read golden image manifests recorded in NetBox
description:
  - Returns the manifests of golden images recorded by M(gpucloud.infra.netbox_image), keyed by platform slug,
    those of O(platforms), or every image platform when none are named.
  - A device's hostvar C(platform) (from the gpucloud inventory plugin) is such a slug, so a play can look up the
    image a node should run.
  - Read-only.
version_added: "0.3.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  platforms:
    description: Slugs of the image platforms wanted; all image platforms when empty. Fails naming every slug that
      is not an image platform in NetBox.
    type: list
    elements: str
    default: []
    aliases: [slugs]
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: The manifests of the images this play's nodes should run
  gpucloud.infra.netbox_image_info:
    platforms: "{{ ansible_play_hosts | map('extract', hostvars, 'platform') | select | unique }}"
  delegate_to: localhost
  run_once: true
  register: images

- name: Every image recorded
  gpucloud.infra.netbox_image_info:
  register: all_images
"""

RETURN = r"""
manifests:
  description: "{platform slug: manifest}."
  returned: always
  type: dict
platforms:
  description: "{platform slug: {id, name, family, version, build_key, sha256, device_count}}."
  returned: always
  type: dict
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_image


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            platforms=dict(type="list", elements="str", default=[], aliases=["slugs"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        nb = netbox_api.from_params(module.params)
        result = netbox_image.manifests(nb, p["platforms"])
    except netbox_image.ImageError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
