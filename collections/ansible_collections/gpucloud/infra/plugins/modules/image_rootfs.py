#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_rootfs
short_description: Decide whether a golden image needs building and prepare the root it is built in
description:
  - Computes the image's build key from the base key, the image settings, the variables of the roles that tune it
    and the content of the directories those roles live in.
  - When the current manifest of O(name) in O(output_dir) has that key and its artifacts are intact, the image is
    up to date; nothing happens and RV(up_to_date) is true.
  - Otherwise it prepares the root under O(work_dir)/rootfs for the chroot connection. That is the previous root when
    it came from the same base and O(fresh) is false (incremental), else a new extraction of the base tarball. It
    then copies the host's resolver into the root and blocks service starts (policy-rc.d) until finalize.
  - In check mode nothing is extracted; the result says whether a build would happen.
version_added: "0.4.0"
author: gpucloud contributors
options:
  name:
    description: Image name (the family), e.g. C(gpu-debian12).
    type: str
    required: true
  base_path:
    description: The base tarball (from M(gpucloud.infra.image_base)).
    type: path
    required: true
  base_key:
    description: The base's cache key.
    type: str
    required: true
  settings:
    description: The image's own settings that shape it (formats, node type, vendors, keys, ...).
    type: dict
    default: {}
  role_vars:
    description: Variables handed to the roles that tune the root (their names and values go into the key).
    type: dict
    default: {}
  input_paths:
    description: Directories and files whose content shapes the image (the tuning roles, profiles).
    type: list
    elements: path
    default: []
  work_dir:
    description: Where the root is built (needs room for the unpacked root).
    type: path
    required: true
  output_dir:
    description: Where artifacts and manifests are written.
    type: path
    required: true
  fresh:
    description: Start from the base tarball even when the previous root could be reused.
    type: bool
    default: false
  force:
    description: Build even when the current manifest has the same build key.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Prepare the root of gpu-debian12
  gpucloud.infra.image_rootfs:
    name: gpu-debian12
    base_path: "{{ base.path }}"
    base_key: "{{ base.key }}"
    role_vars: {os_tuning_hugepages_count: 1024}
    input_paths: ["{{ playbook_dir }}/../roles/os_tuning"]
    work_dir: /var/tmp/gpucloud/images/gpu-debian12
    output_dir: /var/lib/gpucloud/images
  register: image_root
"""

RETURN = r"""
up_to_date:
  description: The current artifacts were built from the same inputs; nothing to do.
  returned: always
  type: bool
build_key:
  description: Digest of every input of the build.
  returned: always
  type: str
root:
  description: The prepared root (absent when up to date).
  returned: when a build is due
  type: str
reused:
  description: Whether the previous root was reused (incremental build).
  returned: when a build is due
  type: bool
manifest:
  description: The current manifest, when up to date.
  returned: when up to date
  type: dict
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpucloud.infra.plugins.module_utils.image_build import (
    BuildError,
    build_key,
    current,
    prepare_root,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            base_path=dict(type="path", required=True),
            base_key=dict(type="str", required=True),
            settings=dict(type="dict", default={}),
            role_vars=dict(type="dict", default={}),
            input_paths=dict(type="list", elements="path", default=[]),
            work_dir=dict(type="path", required=True),
            output_dir=dict(type="path", required=True),
            fresh=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    missing = [path for path in p["input_paths"] if not Path(path).exists()]
    if missing:
        module.fail_json(msg=f"input_paths: these do not exist: {missing}")
    if not Path(p["base_path"]).is_file():
        module.fail_json(msg=f"base_path: no base tarball at {p['base_path']}")
    key = build_key(p["base_key"], p["settings"], p["role_vars"], p["input_paths"])
    manifest = None if p["force"] else current(Path(p["output_dir"]), p["name"], key)
    if manifest:
        module.exit_json(changed=False, up_to_date=True, build_key=key, manifest=manifest)
    if module.check_mode:
        module.exit_json(changed=True, up_to_date=False, build_key=key)
    try:
        prepared = prepare_root(Path(p["work_dir"]), Path(p["base_path"]), p["base_key"], p["fresh"])
    except (BuildError, OSError) as exc:
        module.fail_json(msg=str(exc), build_key=key)
    module.exit_json(changed=True, up_to_date=False, build_key=key, **prepared)


if __name__ == "__main__":
    main()
