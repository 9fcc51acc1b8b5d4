#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: sysfs
short_description: Set kernel tunables in /sys and /proc/sys on a running host
description:
  - Reads each file, compares it with the wanted value and writes only the files that differ, then reads them back.
  - For selector files such as C(/sys/kernel/mm/transparent_hugepage/enabled) (C(always [madvise] never)) the
    bracketed entry is the current value. Whitespace is normalised, so C(4096 87380 134217728) matches a tab-separated
    read-back.
  - Files that do not exist (no cpufreq in a VM, a sysctl the kernel lacks) and files that cannot be written
    (read-only C(/sys) in a container) are reported and skipped, not failed.
  - A value the kernel only partly applies (fewer hugepages than asked for) is reported in RV(short); the change is
    what the kernel actually did, so a second run reports no change.
version_added: "0.4.0"
options:
  settings:
    description:
      - Wanted value by path; a path may be a glob (C(/sys/devices/system/cpu/cpufreq/policy*/scaling_governor)).
    type: dict
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author: gpucloud contributors
"""

EXAMPLES = r"""
- name: THP always, now
  gpucloud.infra.sysfs:
    settings:
      /sys/kernel/mm/transparent_hugepage/enabled: always
      /proc/sys/vm/swappiness: "1"
"""

RETURN = r"""
before:
  description: Value read from each existing path before the change.
  type: dict
  returned: always
after:
  description: Value of each existing path after the change (the wanted value for writable paths in check mode).
  type: dict
  returned: always
missing:
  description: Settings whose path (or glob) matched nothing.
  type: list
  returned: always
unwritable:
  description: Paths that differ but cannot be written, with the reason.
  type: dict
  returned: always
short:
  description: Paths the kernel did not set to the wanted value after the write.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpucloud.infra.plugins.module_utils.sysfs import apply, expand, lines

def main():
    module = AnsibleModule(argument_spec={"settings": {"type": "dict", "required": True}}, supports_check_mode=True)
    try:
        wanted, missing = expand(module.params["settings"])
        result = apply(wanted, module.check_mode)
    except OSError as exc:
        module.fail_json(msg=f"cannot set {exc.filename}: {exc.strerror}")
    if result["unwritable"]:  # one warning, not one per sysctl: a container's read-only /proc/sys is expected
        module.warn(f"{len(result['unwritable'])} setting(s) left as they are, not writable here (read-only /sys or "
                    f"/proc/sys, or not root): {', '.join(sorted(result['unwritable']))}")
    for path, values in sorted(result["short"].items()):
        module.warn(f"{path} is {values['got']!r} after writing {values['wanted']!r}")
    changed = result["before"] != result["after"]
    module.exit_json(changed=changed, missing=missing, **result,
                     diff={"before": lines(result["before"]), "after": lines(result["after"])})


if __name__ == "__main__":
    main()
