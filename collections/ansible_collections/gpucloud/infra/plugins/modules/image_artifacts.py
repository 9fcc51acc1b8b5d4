#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_artifacts
short_description: Turn a tuned image root into raw, qcow2 and squashfs artifacts and write their manifest
description:
  - Scrubs what must not be shared between nodes (machine id, SSH host keys, the build's resolver and service
    block), stamps the image's identity into C(/etc/gpucloud/image.json), then writes the artifacts
    C(<name>-<version>.{raw,qcow2,squashfs,vmlinuz,initrd}) and the manifest C(<name>-<version>.manifest.json)
    (also as C(<name>.manifest.json), the current one).
  - raw is an ext4 file system made with C(mkfs.ext4 -d) (no mount or loop device), labelled C(gpucloud-root); qcow2
    is converted from it with qemu-img; squashfs (zstd) is the root for PXE and diskless boot.
  - The manifest records base, kernel, cmdline, every package, the pinned GPU stack, the applied tuning, the sha256
    and size of every artifact, build time and git revision.
  - Runs only when M(gpucloud.infra.image_rootfs) said a build is due, so it always reports a change; in check mode
    it writes nothing.
version_added: "0.4.0"
author: gpucloud contributors
options:
  name:
    description: Image name (the family).
    type: str
    required: true
  version:
    description: Image version; C(<UTC date>.<first 8 of the build key>) when unset.
    type: str
  root:
    description: The tuned root (from M(gpucloud.infra.image_rootfs)).
    type: path
    required: true
  work_dir:
    description: The build's work directory (the root's parent), marked reusable once artifacts are written.
    type: path
    required: true
  build_key:
    description: The build key (from M(gpucloud.infra.image_rootfs)).
    type: str
    required: true
  base:
    description: The base's metadata (RV(gpucloud.infra.image_base#module:meta)).
    type: dict
    required: true
  output_dir:
    description: Where artifacts and manifests go.
    type: path
    required: true
  formats:
    description: Artifacts to make (kernel and initrd always come along).
    type: list
    elements: str
    choices: [raw, qcow2, squashfs]
    default: [raw, qcow2, squashfs]
  raw_free_mb:
    description: Free space left in the raw file system, in MiB.
    type: int
    default: 512
  qcow2_compress:
    description: Compress the qcow2 (smaller, much slower to build).
    type: bool
    default: false
  squashfs_level:
    description: zstd level of the squashfs.
    type: int
    default: 3
  keep:
    description: Versions of this image kept in O(output_dir); older ones are removed.
    type: int
    default: 3
  source_dir:
    description: Checkout whose git revision the manifest records.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Artifacts and manifest
  gpucloud.infra.image_artifacts:
    name: gpu-debian12
    root: "{{ image_root.root }}"
    work_dir: /var/tmp/gpucloud/images/gpu-debian12
    build_key: "{{ image_root.build_key }}"
    base: "{{ base.meta }}"
    output_dir: /var/lib/gpucloud/images
"""

RETURN = r"""
version:
  description: The image version.
  returned: always
  type: str
manifest_path:
  description: The versioned manifest.
  returned: success
  type: str
manifest:
  description: The manifest.
  returned: success
  type: dict
pruned:
  description: Files of older versions that were removed.
  returned: success
  type: list
"""

import time
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpucloud.infra.plugins.module_utils.image_artifacts import (
    ArtifactError,
    build_artifacts,
    manifest,
    prune,
    scrub,
    stamp,
    write_manifest,
)
from ansible_collections.gpucloud.infra.plugins.module_utils.image_build import ensure_dir, git_revision, mark_clean


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            version=dict(type="str"),
            root=dict(type="path", required=True),
            work_dir=dict(type="path", required=True),
            build_key=dict(type="str", required=True, no_log=False),
            base=dict(type="dict", required=True),
            output_dir=dict(type="path", required=True),
            formats=dict(type="list", elements="str", default=["raw", "qcow2", "squashfs"],
                         choices=["raw", "qcow2", "squashfs"]),
            raw_free_mb=dict(type="int", default=512),
            qcow2_compress=dict(type="bool", default=False),
            squashfs_level=dict(type="int", default=3),
            keep=dict(type="int", default=3),
            source_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    version = p["version"] or f"{time.strftime('%Y%m%d', time.gmtime())}.{p['build_key'][:8]}"
    if module.check_mode:
        module.exit_json(changed=True, version=version)
    root, output_dir = Path(p["root"]), ensure_dir(p["output_dir"])
    stem = f"{p['name']}-{version}"
    identity = {"name": p["name"], "version": version, "build_key": p["build_key"]}
    try:
        scrub(root)
        stamp(root, identity)
        artifacts = build_artifacts(root, output_dir, stem, p["formats"], p)
        data = manifest(root, identity, p["base"], artifacts, git_revision(p["source_dir"] or "."))
        path = write_manifest(output_dir, stem, p["name"], data)
        pruned = prune(output_dir, p["name"], max(p["keep"], 1))
    except (ArtifactError, OSError, ValueError) as exc:
        module.fail_json(msg=f"image {stem}: {exc}")
    mark_clean(Path(p["work_dir"]), p["base"].get("key", ""))
    module.exit_json(changed=True, version=version, manifest_path=str(path), manifest=data, pruned=pruned)


if __name__ == "__main__":
    main()
