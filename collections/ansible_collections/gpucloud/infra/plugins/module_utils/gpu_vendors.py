# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""What each GPU vendor means to the schedulers: its device files, the environment Slurm sets for a job's GPUs,
its Kubernetes extended resource, container runtime and operator. One table, read by the Slurm and Kubernetes
config builders and by the lab (which makes stand-in device files of the same kind, there being no GPU).

Keys are NetBox's `gpu_vendor` values (the data model's choices), compared case-insensitively.
"""

from __future__ import annotations

VENDORS = {
    "nvidia": {
        # /dev/nvidia0.. are character devices 195:N (nvidiactl is 195:255, not a GPU).
        "device": "/dev/nvidia{index}", "major": 195, "first_minor": 0,
        # gres.conf Flags: which variables slurmstepd sets for the allocated GPUs.
        "gres_flags": "nvidia_gpu_env", "env": "CUDA_VISIBLE_DEVICES",
        "resource": "nvidia.com/gpu", "runtime": "nvidia", "operator": "nvidia",
        "smi": "nvidia-smi",
    },
    "amd": {
        # ROCm reaches a GPU through its DRM render node, 226:128 upwards.
        "device": "/dev/dri/renderD{minor}", "major": 226, "first_minor": 128,
        "gres_flags": "amd_gpu_env", "env": "ROCR_VISIBLE_DEVICES",
        "resource": "amd.com/gpu", "runtime": None, "operator": "amd",
        "smi": "rocm-smi",
    },
    "intel": {
        # Gaudi accelerators are DRM accel devices, 261:N. Slurm has no Gaudi variable: ZE_AFFINITY_MASK for oneAPI,
        # and the task prolog exports HABANA_VISIBLE_MODULES from the job's GPU ordinals.
        "device": "/dev/accel/accel{index}", "major": 261, "first_minor": 0,
        "gres_flags": "intel_gpu_env", "env": "HABANA_VISIBLE_MODULES",
        "resource": "habana.ai/gaudi", "runtime": "habana", "operator": "intel",
        "smi": "hl-smi",
    },
}


class UnknownVendor(Exception):
    pass


def vendor(name) -> dict:
    key = str(name or "").strip().lower()
    if key not in VENDORS:
        raise UnknownVendor(f"expected a GPU vendor of {', '.join(sorted(VENDORS))}, got {name!r}")
    return VENDORS[key]


def device_files(name, count: int) -> list[dict]:
    """[{path, major, minor}] of a node's `count` GPUs, in index order."""
    spec = vendor(name)
    return [{"path": spec["device"].format(index=i, minor=spec["first_minor"] + i), "major": spec["major"],
             "minor": spec["first_minor"] + i} for i in range(int(count))]
