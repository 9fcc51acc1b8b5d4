#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_base
short_description: Build (once) and cache the base root file system of a golden image
description:
  - Builds a minimal root file system of a distribution with the listed packages and stores it as a tarball in a
    cache directory, keyed by everything that shapes it (distribution, suite, variant, architecture, mirror,
    components, packages). An unchanged request finds the cached tarball and changes nothing.
  - Builders are mmdebstrap, then debootstrap as the fallback (Debian, Ubuntu), and dnf C(--installroot) (Rocky).
  - Concurrent runs for the same base build it once; the others wait and reuse it.
  - In check mode nothing is built; the result says whether a build would happen.
version_added: "0.4.0"
author: gpucloud contributors
options:
  distribution:
    description: Distribution of the base. Debian is the tested one; Ubuntu 22.04/24.04 and Rocky 9 are configurable.
    type: str
    choices: [debian, ubuntu, rocky]
    default: debian
  suite:
    description: Release (bookworm, jammy, noble; C(9) for Rocky).
    type: str
    default: bookworm
  variant:
    description: Package selection of the builder.
    type: str
    choices: [minbase, buildd, standard]
    default: minbase
  architecture:
    description: Target architecture.
    type: str
    default: amd64
  mirror:
    description: Package mirror; the distribution's default when unset.
    type: str
  components:
    description: Archive components; C(main) (Debian, Rocky) or C(main,universe) (Ubuntu) when unset.
    type: list
    elements: str
  packages:
    description: Packages installed on top of the variant.
    type: list
    elements: str
    default: []
  builder:
    description: Builder to use; C(auto) takes the first installed one for the distribution.
    type: str
    choices: [auto, mmdebstrap, debootstrap, dnf]
    default: auto
  cache_dir:
    description: Where tarballs are cached. Defaults to E(GPUCLOUD_IMAGE_CACHE), else C(~/.cache/gpucloud/images).
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Needs root (the builders create device nodes and chown files).
"""

EXAMPLES = r"""
- name: Debian bookworm base with a kernel, systemd and python3
  gpucloud.infra.image_base:
    suite: bookworm
    packages: [systemd-sysv, linux-image-amd64, initramfs-tools, python3, openssh-server]
  register: base
"""

RETURN = r"""
path:
  description: The cached tarball.
  returned: always
  type: str
key:
  description: The cache key (a digest of the inputs).
  returned: always
  type: str
created:
  description: Whether this run built the base.
  returned: always
  type: bool
meta:
  description: What was built and how (spec, builder and version, sha256, size, build time); empty in check mode
    when no base is cached yet.
  returned: always
  type: dict
"""

from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpucloud.infra.plugins.module_utils.image_base import (
    BaseError,
    build,
    cached,
    default_cache_dir,
    key_of,
    paths,
    spec_of,
    validate,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            distribution=dict(type="str", default="debian", choices=["debian", "ubuntu", "rocky"]),
            suite=dict(type="str", default="bookworm"),
            variant=dict(type="str", default="minbase", choices=["minbase", "buildd", "standard"]),
            architecture=dict(type="str", default="amd64"),
            mirror=dict(type="str"),
            components=dict(type="list", elements="str"),
            packages=dict(type="list", elements="str", default=[]),
            builder=dict(type="str", default="auto", choices=["auto", "mmdebstrap", "debootstrap", "dnf"]),
            cache_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    errors = validate(module.params)
    if errors:
        module.fail_json(msg="invalid base image request: " + "; ".join(errors), errors=errors)
    cache_dir = Path(module.params["cache_dir"]) if module.params["cache_dir"] else default_cache_dir()
    spec = spec_of(module.params)
    key = key_of(spec)
    tarball = str(paths(cache_dir, key)["tarball"])
    meta = cached(cache_dir, key)
    if meta or module.check_mode:
        module.exit_json(changed=not meta, created=False, path=tarball, key=key, meta=meta or {})
    try:
        outcome = build(cache_dir, spec, module.params["builder"])
    except (BaseError, OSError) as exc:
        module.fail_json(msg=str(exc), key=key)
    module.exit_json(changed=outcome["created"], created=outcome["created"], path=tarball, key=key,
                     meta=outcome["meta"])


if __name__ == "__main__":
    main()
