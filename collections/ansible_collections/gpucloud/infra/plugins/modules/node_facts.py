#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_facts
short_description: Read a GPU node's effective kernel, tuning and GPU stack state without changing anything
description:
  - Reads what the running node actually has, as opposed to what its configuration says it should have;
    M(gpucloud.infra.image_drift) compares the result with the manifest of the node's image.
  - Kernel command line (raw and parsed), transparent huge pages (enabled and defrag), huge pages per page size
    and from C(/proc/meminfo), CPU frequency governor per policy, IOMMU state, kernel release and version, whether
    nouveau, nvidia, nvidia_peermem, amdgpu and habanalabs are loaded, and the image identity stamped into
    C(image.json) in O(stamp_dir).
  - Package versions of O(packages) through C(dpkg-query) (C(rpm) on RPM-based nodes), and with O(gpu_stack) the
    installed versions of the packages that C(gpu-stack.json) in O(stamp_dir) pins.
  - GPU driver and CUDA versions from C(nvidia-smi), the driver from C(rocm-smi) or C(hl-smi) when present, and the
    NCCL version from the C(libnccl2) package or the C(libnccl.so.2.X.Y) file name.
  - Facts are returned under RV(node_facts), not as C(ansible_facts), on purpose; this repository caches facts
    in files, and a drift check has to compare what the node says now, not an older cached value.
  - Problems reading a source (invalid C(image.json), a failing C(nvidia-smi)) are warnings; the source reads null.
version_added: "0.3.0"
author: gpucloud contributors
options:
  packages:
    description: Packages whose installed version to report in RV(node_facts.packages) (null when not installed).
    type: list
    elements: str
    default: []
  gpu_stack:
    description: Read C(gpu-stack.json) in O(stamp_dir) and report its components' installed versions.
    type: bool
    default: false
  stamp_dir:
    description:
      - Directory of the image's stamps, C(image.json) (golden_image) and C(gpu-stack.json) (gpu_stack).
      - Nodes booted diskless may carry them elsewhere than in the image's C(/etc/gpucloud).
    type: path
    default: /etc/gpucloud
  gpu_tools:
    description: Run the vendor tools (C(nvidia-smi), C(rocm-smi), C(hl-smi)) that are installed, and look for NCCL.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: Read-only; check mode runs the same reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs no privileges; C(/proc) and C(/sys) are world-readable, and so is what the vendor tools print here.
seealso:
  - module: gpucloud.infra.image_drift
"""

EXAMPLES = r"""
- name: Read the node's truth
  gpucloud.infra.node_facts:
    gpu_stack: true
    packages: [linux-image-amd64]
  register: node

- name: Show the effective THP mode and the GPU driver
  ansible.builtin.debug:
    msg: "THP {{ node.node_facts.thp.enabled }}, driver {{ node.node_facts.gpu.driver_version | default('none') }}"
"""

RETURN = r"""
node_facts:
  description: The node's effective state.
  returned: always
  type: dict
  contains:
    cmdline:
      description: C(/proc/cmdline) as C(raw), C(args) (ordered C([name, value]) pairs, value null for a flag),
        C(params) (name to its last value) and C(init_args) (what follows C(--)).
      type: dict
      sample: {raw: "quiet iommu=pt", args: [[quiet, null], [iommu, pt]], params: {quiet: null, iommu: pt},
               init_args: []}
    thp:
      description: Active transparent huge page modes.
      type: dict
      sample: {enabled: always, defrag: madvise}
    hugepages:
      description: C(sizes) maps the page size in kB to its C(total) and C(free) pages; C(total), C(free) and
        C(default_size_kb) come from C(/proc/meminfo).
      type: dict
      sample: {sizes: {"2048": {total: 1024, free: 1024}}, total: 1024, free: 1024, default_size_kb: 2048}
    cpu:
      description: C(governor) is the governor of every cpufreq policy, C(mixed) when they differ, null without
        cpufreq; C(policies) maps each policy to its governor.
      type: dict
      sample: {governor: performance, policies: {policy0: performance}}
    iommu:
      description: C(enabled) when the kernel runs an IOMMU (units in C(/sys/class/iommu) or IOMMU groups), the units,
        the group count, the groups' domain types (C(identity) is passthrough), C(mode) (the C(iommu=) parameter)
        and the IOMMU parameters on the command line.
      type: dict
      sample: {enabled: true, units: [dmar0], groups: 112, domain_types: [identity], mode: pt,
               cmdline: {intel_iommu: "on", iommu: pt}}
    kernel:
      description: Running kernel release and version.
      type: dict
      sample: {release: 6.1.0-35-amd64, version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.137-1 (2025-05-07)"}
    modules:
      description: Whether each watched kernel module is loaded (or built in).
      type: dict
      sample: {nouveau: false, nvidia: true, nvidia_peermem: true, amdgpu: false, habanalabs: false}
    image:
      description: Content of C(image.json) in O(stamp_dir) (name, version, build_key); null when absent.
      type: dict
    packages:
      description: Installed version of each of O(packages); null when not installed.
      type: dict
    gpu_stack:
      description: With O(gpu_stack), C(vendor), C(release) and per component its C(package), the C(pinned) version
        from C(gpu-stack.json) and the C(installed) version; null when the file is absent or not asked for.
      type: dict
    accelerators:
      description: One entry per vendor tool found (C(vendor), C(tool), C(driver_version), C(count), C(devices),
        C(cuda_version) for NVIDIA, or C(error)).
      type: list
      elements: dict
    gpu:
      description: The first entry of RV(node_facts.accelerators), null without a GPU tool.
      type: dict
    nccl:
      description: C(version) and where it was found (C(source)); null when NCCL is not installed.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpucloud.infra.plugins.module_utils import node_facts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            gpu_stack=dict(type="bool", default=False),
            gpu_tools=dict(type="bool", default=True),
            stamp_dir=dict(type="path", default="/etc/gpucloud"),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    def which(name):
        return module.get_bin_path(name)

    facts, problems = node_facts.gather("/", run, which, packages=p["packages"], read_gpu_stack=p["gpu_stack"],
                                        tools=p["gpu_tools"], stamp_dir=p["stamp_dir"])
    for problem in problems:
        module.warn(problem)
    module.exit_json(changed=False, node_facts=facts)


if __name__ == "__main__":
    main()
