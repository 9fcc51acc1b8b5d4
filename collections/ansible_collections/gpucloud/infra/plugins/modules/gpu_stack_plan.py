#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_stack_plan
short_description: Plan (or verify) a pinned GPU stack against what dpkg has installed and apt can offer
description:
  - Reads, for every pinned package, the installed version (C(dpkg-query)) and the versions the configured
    repositories offer (C(apt-cache policy)), and plans the install of the exact pinned versions.
  - B(Refuses) (fails, naming every offending package with its pinned, installed and available versions) when a
    pinned version is in no repository, or when a package is installed at another version and O(allow_change) is
    false. A one-version skew between nodes of a synchronous cluster hangs jobs, so a live node is never moved
    silently.
  - Changes nothing on the node; the plan is returned for M(ansible.builtin.apt) to carry out. Refreshing the
    package lists (O(update_cache)) updates apt's cache only and is not reported as a change.
  - In check mode the package lists are fetched into a temporary directory, so the plan (and its refusals) is
    computed without touching C(/var/lib/apt). Versions from repositories not configured yet
    (O(repositories_pending)) cannot be known then and are not refused.
  - With O(verify=true) it only checks that every package is installed at its pin and fails otherwise.
  - Works on a live host and inside an image root (C(community.general.chroot)).
version_added: "0.3.0"
author: gpucloud contributors
options:
  components:
    description: The pins, component name (driver, cuda, nccl, ...) to package and exact Debian version.
    type: dict
    required: true
  allow_change:
    description: Up- or downgrade packages installed at another version than pinned, instead of refusing.
    type: bool
    default: false
  update_cache:
    description: Run C(apt-get update) first (when the lists are older than O(cache_valid_time)).
    type: bool
    default: true
  cache_valid_time:
    description: Lists younger than this many seconds are not refreshed; 0 always refreshes.
    type: int
    default: 0
  repositories_pending:
    description:
      - The repository configuration changed in this run (or would have, in check mode).
      - In normal mode it forces a list refresh; in check mode it means availability cannot be known.
    type: bool
    default: false
  verify:
    description: Only check that every component is installed at its pinned version; fail otherwise.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Needs C(dpkg-query), C(apt-get) and C(apt-cache) in the target; no Python packages beyond the standard library.
seealso:
  - module: ansible.builtin.apt
  - module: ansible.builtin.dpkg_selections
"""

EXAMPLES = r"""
- name: Plan the stack (fails on a version mismatch)
  gpucloud.infra.gpu_stack_plan:
    components:
      smi: {package: rocm-smi, version: 5.2.3-2}
      runtime: {package: libhsa-runtime64-1, version: 5.2.3-3}
  register: plan

- name: Install exactly the pins
  ansible.builtin.apt:
    name: "{{ plan.install }}"
    install_recommends: false
  when: plan.install | length > 0

- name: Verify
  gpucloud.infra.gpu_stack_plan:
    components: "{{ components }}"
    verify: true
"""

RETURN = r"""
components:
  description: Per component, what was found and what is to be done.
  returned: always
  type: dict
  contains:
    package:
      description: The package pinned.
      type: str
    pinned:
      description: The pinned version.
      type: str
    installed:
      description: The installed version; null when not installed.
      type: str
    available:
      description: The versions the repositories offer, in apt's order (pinned or candidate first).
      type: list
      elements: str
    action:
      description: keep (installed at the pin), install, change (another version installed, allowed) or refuse.
      type: str
  sample:
    smi: {package: rocm-smi, pinned: 5.2.3-2, installed: null, available: [5.2.3-2], action: install}
install:
  description: C(package=version) for every package to install or change, for M(ansible.builtin.apt).
  returned: always
  type: list
  elements: str
  sample: [rocm-smi=5.2.3-2]
refusals:
  description: Why the plan is refused, one line per package (the module fails when there are any).
  returned: always
  type: list
  elements: str
mismatches:
  description: With O(verify), the components not at their pin (the module fails when there are any).
  returned: when verify is true
  type: list
  elements: str
held:
  description: The pinned packages whose dpkg selection is hold (C(apt-mark showhold)).
  returned: always
  type: list
  elements: str
  sample: [rocm-smi]
cache_updated:
  description: Whether the package lists were refreshed.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpucloud.infra.plugins.module_utils import gpu_stack


def runner(module):
    # C locale: the parsers read apt's English output; no $VAR expansion: dpkg-query's format uses ${Package}.
    def run(cmd):
        return module.run_command(cmd, environ_update={"LC_ALL": "C"}, expand_user_and_vars=False)
    return run


def read_available(module, run, names: list[str], p: dict) -> tuple[dict, bool]:
    """The versions apt offers, and whether the lists were refreshed (in a scratch directory in check mode)."""
    age = gpu_stack.lists_age()
    stale = p["repositories_pending"] or age is None or age >= p["cache_valid_time"]
    if module.check_mode and p["update_cache"] and stale:
        with gpu_stack.ScratchLists() as options:
            gpu_stack.update_lists(run, options)
            return gpu_stack.read_available(run, names, options), True
    if not module.check_mode and p["update_cache"] and stale:
        gpu_stack.update_lists(run)
        return gpu_stack.read_available(run, names), True
    return gpu_stack.read_available(run, names), False


def main():
    module = AnsibleModule(
        argument_spec=dict(
            components=dict(type="dict", required=True),
            allow_change=dict(type="bool", default=False),
            update_cache=dict(type="bool", default=True),
            cache_valid_time=dict(type="int", default=0),
            repositories_pending=dict(type="bool", default=False),
            verify=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    errors = gpu_stack.validate_components(p["components"])
    if errors:
        module.fail_json(msg="invalid components: " + "; ".join(errors), errors=errors)
    names = gpu_stack.packages(p["components"])
    run = runner(module)
    try:
        installed, held = gpu_stack.read_installed(run, names)
        available, updated = ({}, False) if p["verify"] else read_available(module, run, names, p)
    except gpu_stack.StackError as exc:
        module.fail_json(msg=str(exc))
    if p["verify"]:
        steps = gpu_stack.plan(p["components"], installed, {}, availability_known=False)["components"]
        mismatches = gpu_stack.verify(p["components"], installed)
        if mismatches:
            module.fail_json(msg=f"{len(mismatches)} GPU stack package(s) not at their pin: " + "; ".join(mismatches),
                             mismatches=mismatches, components=steps, held=held)
        module.exit_json(changed=False, components=steps, install=[], refusals=[], mismatches=[], held=held,
                         cache_updated=False)
    known = not (module.check_mode and p["repositories_pending"])
    result = gpu_stack.plan(p["components"], installed, available, p["allow_change"], known)
    if result["refusals"]:
        module.fail_json(msg=f"refusing the GPU stack, {len(result['refusals'])} package(s) do not match their pin: "
                         + "; ".join(result["refusals"]), cache_updated=updated, held=held, **result)
    module.exit_json(changed=False, cache_updated=updated, held=held, **result)


if __name__ == "__main__":
    main()
