# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the os_tuning role: input problems, the node type's hugepages, the CPU vendor and
the kernel command line. Pure functions, so that the cmdline per vendor and node type is tested
without a host (tests/test_os_tuning.py)."""

from __future__ import annotations

HUGEPAGE_SIZES_KB = {"2M": 2048, "1G": 1048576}
CPU_VENDORS = ("auto", "intel", "amd", "arm", "any")
GPU_VENDORS = ("nvidia", "amd", "intel", "none")
THP_MODES = ("always", "madvise", "never")
GOVERNORS = ("performance", "powersave", "schedutil", "ondemand", "conservative", "userspace")
# /proc/cpuinfo vendor_id, and ansible_architecture for CPUs that have none (arm64).
VENDOR_IDS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "amd"}
ARM_ARCHITECTURES = ("aarch64", "arm64")


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hugepage_problems(by_node_type) -> list[str]:
    if not isinstance(by_node_type, dict):
        return [f"os_tuning_hugepages_by_node_type must be a mapping of node type to {{size, count}}, "
                f"got {type(by_node_type).__name__}"]
    problems = [] if "default" in by_node_type else [
        "os_tuning_hugepages_by_node_type needs a 'default' entry (used for node types it does not list)"]
    for node_type, spec in sorted(by_node_type.items(), key=lambda kv: str(kv[0])):
        where = f"os_tuning_hugepages_by_node_type[{node_type}]"
        if not isinstance(spec, dict):
            problems.append(f"{where} must be a mapping with size and count, got {spec!r}")
            continue
        if spec.get("size") not in HUGEPAGE_SIZES_KB:
            problems.append(f"{where}.size must be 2M or 1G, got {spec.get('size')!r}")
        if not _is_count(spec.get("count")):
            problems.append(f"{where}.count must be a non-negative integer, got {spec.get('count')!r}")
    return problems


def _choice_problem(name, value, choices) -> list[str]:
    return [] if value in choices else [f"{name} must be one of {', '.join(choices)}, got {value!r}"]


def os_tuning_problems(inputs: dict) -> list[str]:
    """Every problem with the role's inputs, so that preflight reports them all at once."""
    problems = _hugepage_problems(inputs.get("hugepages_by_node_type"))
    problems += _choice_problem("os_tuning_cpu_vendor", inputs.get("cpu_vendor"), CPU_VENDORS)
    problems += _choice_problem("os_tuning_gpu_vendor", inputs.get("gpu_vendor"), GPU_VENDORS)
    problems += _choice_problem("os_tuning_thp", inputs.get("thp"), THP_MODES)
    problems += _choice_problem("os_tuning_cpu_governor", inputs.get("cpu_governor"), GOVERNORS)
    sysctl = inputs.get("sysctl")
    if not isinstance(sysctl, dict):
        problems.append(f"os_tuning_sysctl must be a mapping of sysctl key to value, got {sysctl!r}")
    else:
        problems += [f"os_tuning_sysctl[{key}] must be a dotted key with a scalar value, got {value!r}"
                     for key, value in sorted(sysctl.items())
                     if "." not in str(key) or "/" in str(key) or isinstance(value, dict | list) or value is None]
    extra = inputs.get("extra_cmdline")
    if not isinstance(extra, list) or any(not isinstance(p, str) or not p or " " in p for p in extra):
        problems.append(f"os_tuning_extra_cmdline must be a list of single kernel parameters, got {extra!r}")
    return problems


def os_tuning_hugepages(by_node_type: dict, node_type) -> dict:
    """The node type's hugepages ({size, size_kb, count}), or the default entry's."""
    spec = by_node_type.get(node_type) or by_node_type["default"]
    return {"size": spec["size"], "size_kb": HUGEPAGE_SIZES_KB[spec["size"]], "count": int(spec["count"])}


def os_tuning_cpu_vendor(cpuinfo: str, architecture: str = "") -> str:
    """intel, amd or arm from /proc/cpuinfo's vendor_id (or the architecture); '' if unknown."""
    if str(architecture).lower() in ARM_ARCHITECTURES:
        return "arm"
    for line in (cpuinfo or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vendor_id":
            return VENDOR_IDS.get(value.strip(), "")
    return ""


def _iommu_params(cpu_vendor: str, passthrough: bool) -> list[str]:
    # arm64's SMMU has no "on" switch; iommu.passthrough=1 is its iommu=pt.
    if cpu_vendor == "arm":
        return ["iommu.passthrough=1"] if passthrough else []
    enable = {"intel": ["intel_iommu=on"], "amd": ["amd_iommu=on"],
              "any": ["intel_iommu=on", "amd_iommu=on"]}[cpu_vendor]
    return enable + (["iommu=pt"] if passthrough else [])


def os_tuning_cmdline(settings: dict) -> str:
    """The kernel parameters, in a fixed order: IOMMU, THP, hugepages, governor, blacklist, extra."""
    params = _iommu_params(settings["cpu_vendor"], settings.get("iommu_passthrough", True))
    params.append(f"transparent_hugepage={settings['thp']}")
    hugepages = settings["hugepages"]
    if hugepages["count"] > 0:
        size = hugepages["size"]
        params += [f"default_hugepagesz={size}", f"hugepagesz={size}", f"hugepages={hugepages['count']}"]
    params.append(f"cpufreq.default_governor={settings['cpu_governor']}")
    if settings.get("blacklist_nouveau"):
        params.append("modprobe.blacklist=nouveau")
    params += [p for p in settings.get("extra_cmdline", []) if p not in params]
    return " ".join(params)


def os_tuning_cmdline_missing(wanted: str, current: str) -> list[str]:
    """The wanted parameters the running kernel was not booted with."""
    booted = set((current or "").split())
    return [p for p in wanted.split() if p not in booted]


class FilterModule:
    def filters(self):
        return {
            "os_tuning_problems": os_tuning_problems,
            "os_tuning_hugepages": os_tuning_hugepages,
            "os_tuning_cpu_vendor": os_tuning_cpu_vendor,
            "os_tuning_cmdline": os_tuning_cmdline,
            "os_tuning_cmdline_missing": os_tuning_cmdline_missing,
        }
