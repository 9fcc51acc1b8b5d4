# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A node's effective state, read from procfs/sysfs and the vendors' tools; nothing is changed.

Parsers are pure functions over text. Readers take `root` (a directory standing for "/") so tests point
them at a recorded tree, and `run(argv) -> (rc, stdout, stderr)` / `which(name) -> path | None` so tests
replay recorded tool outputs.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re

THP_DIR = "sys/kernel/mm/transparent_hugepage"
HUGEPAGES_DIR = "sys/kernel/mm/hugepages"
CPUFREQ_DIR = "sys/devices/system/cpu/cpufreq"
WATCHED_MODULES = ("nouveau", "nvidia", "nvidia_peermem", "amdgpu", "habanalabs")
# Where libnccl.so.2.X.Y lands: Debian/Ubuntu multiarch, RHEL, and the CUDA toolkit.
NCCL_LIB_GLOBS = ("usr/lib/x86_64-linux-gnu/libnccl.so.2.*", "usr/lib/aarch64-linux-gnu/libnccl.so.2.*",
                  "usr/lib64/libnccl.so.2.*", "usr/local/cuda*/lib64/libnccl.so.2.*", "usr/local/lib/libnccl.so.2.*")
NCCL_PACKAGES = ("libnccl2", "libnccl")
# dpkg-query and rpm expand \t and \n in their format strings themselves.
DPKG_FORMAT = "--showformat=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n"
RPM_FORMAT = "%{NAME}\\t%{VERSION}-%{RELEASE}\\n"
NVIDIA_QUERY = ["--query-gpu=name,driver_version,memory.total,persistence_mode,pci.bus_id", "--format=csv,noheader"]
_CMDLINE_TOKEN = re.compile(r'(?:[^\s"]+|"[^"]*")+')
_CUDA = re.compile(r"CUDA Version\s*:?\s*([0-9]+(?:\.[0-9]+)*)")
_SMI_DRIVER = re.compile(r"Driver Version\s*:?\s*([0-9][0-9.]*)")


# -- parsers (text in, data out) ---------------------------------------------------------------------
def parse_cmdline(text: str) -> dict:
    """/proc/cmdline: `args` in order as [name, value] (value null for a bare flag), `params` with the last
    value of each name (what most parameters honour). Arguments after `--` belong to init, not the kernel."""
    raw = text.strip()
    args, init_args, init = [], [], False
    for token in _CMDLINE_TOKEN.findall(raw):
        if token == "--" and not init:
            init = True
        elif init:
            init_args.append(token)
        else:
            name, sep, value = token.partition("=")
            args.append([name, value.replace('"', "") if sep else None])
    return {"raw": raw, "args": args, "params": {name: value for name, value in args}, "init_args": init_args}


def parse_bracketed(text: str | None) -> str | None:
    """THP's sysfs files list every choice and bracket the active one: 'always [madvise] never'."""
    match = re.search(r"\[([^\]]+)\]", text or "")
    return match.group(1) if match else None


def parse_meminfo(text: str) -> dict:
    """/proc/meminfo as {key: int}; values are kB unless the key is a count (HugePages_*)."""
    out = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if sep and fields and fields[0].isdigit():
            out[key.strip()] = int(fields[0])
    return out


def parse_modules(text: str) -> set[str]:
    """/proc/modules: the first column is the module name."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def summarize_governors(policies: dict[str, str]) -> str | None:
    """The one governor every policy uses, 'mixed' when they differ, null without cpufreq."""
    values = set(policies.values())
    if not values:
        return None
    return values.pop() if len(values) == 1 else "mixed"


def parse_dpkg_query(text: str) -> dict[str, str]:
    """Lines of `${Package}\\t${Version}\\t${db:Status-Abbrev}`; only installed ones ('ii', 'hi') count."""
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip()[1:2] == "i" and parts[1]:
            out[parts[0]] = parts[1]
    return out


def parse_rpm_query(text: str) -> dict[str, str]:
    """Lines of `%{NAME}\\t%{VERSION}-%{RELEASE}` (rpm prints 'package X is not installed' elsewhere)."""
    return dict(line.split("\t", 1) for line in text.splitlines() if line.count("\t") == 1)


def _csv_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in row] for row in csv.reader(text.splitlines()) if any(c.strip() for c in row)]


def _mib(value: str) -> int | None:
    match = re.match(r"\s*([0-9]+)\s*MiB", value or "")
    return int(match.group(1)) if match else None


def parse_nvidia_query(text: str) -> list[dict]:
    """`nvidia-smi --query-gpu=name,driver_version,memory.total,persistence_mode,pci.bus_id --format=csv,noheader`."""
    gpus = []
    for row in _csv_rows(text):
        if len(row) < 5:
            continue
        gpus.append({"name": row[0], "driver_version": row[1], "memory_total_mib": _mib(row[2]),
                     "persistence_mode": {"Enabled": True, "Disabled": False}.get(row[3]), "pci_bus_id": row[4]})
    return gpus


def parse_cuda_version(text: str) -> str | None:
    """The CUDA version the driver supports, from the `nvidia-smi` banner or from `nvidia-smi -q`."""
    match = _CUDA.search(text or "")
    return match.group(1) if match else None


def parse_rocm_smi(text: str) -> dict:
    """`rocm-smi --showdriverversion --showproductname --json`: cards keyed card0..N; the driver version sits
    under "system" in ROCm 5.x/6.x and on each card in older releases."""
    data = json.loads(text)
    cards = {k: v for k, v in data.items() if k.startswith("card") and isinstance(v, dict)}
    driver = (data.get("system") or {}).get("Driver version")
    devices = []
    for name in sorted(cards, key=lambda k: int(re.sub(r"\D", "", k) or 0)):
        card = cards[name]
        driver = driver or card.get("Driver version")
        devices.append({"card": name, "name": card.get("Card series") or card.get("Card Series"),
                        "model": card.get("Card model") or card.get("Card Model"),
                        "gfx_version": card.get("GFX Version")})
    return {"driver_version": driver, "devices": devices}


def parse_hl_smi(text: str) -> list[dict]:
    """`hl-smi -Q name,driver_version -f csv,noheader`: one line per Gaudi card."""
    return [{"name": row[0], "driver_version": row[1]} for row in _csv_rows(text) if len(row) >= 2]


def nccl_from_package(version: str | None) -> str | None:
    """libnccl2's Debian version '2.21.5-1+cuda12.4' -> '2.21.5'."""
    return upstream_version(version)


def nccl_from_filename(path: str) -> str | None:
    """'/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5' -> '2.21.5'."""
    match = re.search(r"libnccl\.so\.([0-9]+\.[0-9]+\.[0-9]+)$", path)
    return match.group(1) if match else None


def upstream_version(version: str | None) -> str | None:
    """A package version without epoch and packaging revision: '1:550.54.15-1~deb12u1' -> '550.54.15'."""
    if not version:
        return None
    version = version.split(":", 1)[1] if ":" in version.split("-", 1)[0] else version
    return version.split("-", 1)[0]


# -- procfs / sysfs readers ---------------------------------------------------------------------------
def _path(root: str, rel: str) -> str:
    return os.path.join(root, rel.lstrip("/"))


def read_text(root: str, rel: str) -> str | None:
    try:
        with open(_path(root, rel), encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return None
    except OSError:  # sysfs attributes can refuse reads (EINVAL, EIO) on odd kernels; treat as unknown
        return None


def _read_int(root: str, rel: str) -> int | None:
    text = read_text(root, rel)
    return int(text.strip()) if text and text.strip().lstrip("-").isdigit() else None


def read_cmdline(root: str) -> dict:
    return parse_cmdline(read_text(root, "proc/cmdline") or "")


def read_thp(root: str) -> dict:
    return {"enabled": parse_bracketed(read_text(root, f"{THP_DIR}/enabled")),
            "defrag": parse_bracketed(read_text(root, f"{THP_DIR}/defrag"))}


def read_hugepages(root: str) -> dict:
    """Per page size from sysfs (keyed by size in kB, as strings for JSON), plus /proc/meminfo's summary."""
    sizes = {}
    for entry in sorted(glob.glob(_path(root, f"{HUGEPAGES_DIR}/hugepages-*kB"))):
        size_kb = re.search(r"hugepages-([0-9]+)kB$", entry).group(1)
        rel = os.path.relpath(entry, root)
        sizes[size_kb] = {"total": _read_int(root, f"{rel}/nr_hugepages"),
                          "free": _read_int(root, f"{rel}/free_hugepages")}
    meminfo = parse_meminfo(read_text(root, "proc/meminfo") or "")
    return {"sizes": sizes, "total": meminfo.get("HugePages_Total"), "free": meminfo.get("HugePages_Free"),
            "default_size_kb": meminfo.get("Hugepagesize")}


def read_cpu_governor(root: str) -> dict:
    policies = {}
    for entry in glob.glob(_path(root, f"{CPUFREQ_DIR}/policy*")):
        governor = read_text(root, os.path.relpath(entry, root) + "/scaling_governor")
        if governor and governor.strip():
            policies[os.path.basename(entry)] = governor.strip()
    policies = dict(sorted(policies.items(), key=lambda kv: int(re.sub(r"\D", "", kv[0]) or 0)))
    return {"governor": summarize_governors(policies), "policies": policies}


def read_iommu(root: str, params: dict) -> dict:
    """IOMMU units and groups exist only when the kernel enabled an IOMMU; iommu=pt on the cmdline puts DMA in
    passthrough (the 'identity' domain type in the groups)."""
    units = sorted(os.listdir(_path(root, "sys/class/iommu"))) if os.path.isdir(
        _path(root, "sys/class/iommu")) else []
    groups_dir = _path(root, "sys/kernel/iommu_groups")
    groups = sorted(os.listdir(groups_dir)) if os.path.isdir(groups_dir) else []
    domain_types = sorted({t.strip() for g in groups if (t := read_text(root, f"sys/kernel/iommu_groups/{g}/type"))})
    requested = {k: params[k] for k in ("intel_iommu", "amd_iommu", "iommu") if k in params}
    return {"enabled": bool(units or groups), "units": units, "groups": len(groups), "domain_types": domain_types,
            "mode": params.get("iommu"), "cmdline": requested}


def read_kernel(root: str) -> dict:
    release = read_text(root, "proc/sys/kernel/osrelease")
    version = read_text(root, "proc/sys/kernel/version")
    if release is None and root == "/":  # procfs without the sysctl tree: ask the kernel directly
        release, version = os.uname().release, os.uname().version
    return {"release": release.strip() if release else None, "version": version.strip() if version else None}


def read_modules(root: str) -> dict:
    """Loaded state of the modules drift cares about; without /proc/modules (a kernel built without module
    support) a module can only be built in, which /sys/module/<name> shows."""
    text = read_text(root, "proc/modules")
    if text is not None:
        loaded = parse_modules(text)
        return {name: name in loaded for name in WATCHED_MODULES}
    return {name: os.path.isdir(_path(root, f"sys/module/{name}")) for name in WATCHED_MODULES}


def read_json(root: str, rel: str) -> tuple[dict | None, str | None]:
    """(document, problem): a missing file is no problem, an unreadable one is."""
    text = read_text(root, rel)
    if text is None:
        return None, None
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"/{rel.lstrip('/')} is not valid JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"/{rel.lstrip('/')} is not a JSON object"
    return data, None


# -- tools ------------------------------------------------------------------------------------------
def query_packages(names: list[str], run, which) -> dict[str, str | None]:
    """Installed version of each package (null when not installed), from dpkg, or rpm on RPM-based nodes."""
    if not names:
        return {}
    found: dict[str, str] = {}
    if which("dpkg-query"):
        _, out, _ = run([which("dpkg-query"), "-W", DPKG_FORMAT, *names])
        found = parse_dpkg_query(out)
    elif which("rpm"):
        _, out, _ = run([which("rpm"), "-q", "--qf", RPM_FORMAT, *names])
        found = parse_rpm_query(out)
    return {name: found.get(name) for name in names}


def gpu_stack(document: dict | None, installed: dict[str, str | None]) -> dict | None:
    """gpu-stack.json's pinned components next to what the package manager has installed."""
    if document is None:
        return None
    components = {}
    for name, comp in (document.get("components") or {}).items():
        package = (comp or {}).get("package")
        components[name] = {"package": package, "pinned": (comp or {}).get("version"),
                            "installed": installed.get(package) if package else None}
    return {"vendor": document.get("vendor"), "release": document.get("release"), "components": components}


def stack_packages(document: dict | None) -> list[str]:
    return [c["package"] for c in ((document or {}).get("components") or {}).values()
            if isinstance(c, dict) and c.get("package")]


def nvidia(run, smi: str) -> dict:
    rc, out, err = run([smi, *NVIDIA_QUERY])
    if rc != 0:
        return {"vendor": "nvidia", "tool": "nvidia-smi", "error": (err or out).strip()[:300] or f"rc {rc}"}
    gpus = parse_nvidia_query(out)
    _, banner, _ = run([smi])
    cuda = parse_cuda_version(banner)
    if cuda is None:
        cuda = parse_cuda_version(run([smi, "-q"])[1])
    drivers = sorted({g["driver_version"] for g in gpus})
    return {"vendor": "nvidia", "tool": "nvidia-smi", "driver_version": drivers[0] if len(drivers) == 1 else None,
            "cuda_version": cuda, "count": len(gpus), "devices": gpus}


def amd(run, smi: str) -> dict:
    rc, out, err = run([smi, "--showdriverversion", "--showproductname", "--json"])
    try:
        parsed = parse_rocm_smi(out) if rc == 0 else None
    except ValueError:
        parsed = None
    if parsed is None:
        return {"vendor": "amd", "tool": "rocm-smi", "error": (err or out).strip()[:300] or f"rc {rc}"}
    return {"vendor": "amd", "tool": "rocm-smi", "driver_version": parsed["driver_version"],
            "count": len(parsed["devices"]), "devices": parsed["devices"]}


def intel(run, smi: str) -> dict:
    rc, out, err = run([smi, "-Q", "name,driver_version", "-f", "csv,noheader"])
    if rc != 0:
        return {"vendor": "intel", "tool": "hl-smi", "error": (err or out).strip()[:300] or f"rc {rc}"}
    cards = parse_hl_smi(out)
    drivers = sorted({c["driver_version"] for c in cards})
    return {"vendor": "intel", "tool": "hl-smi", "driver_version": drivers[0] if len(drivers) == 1 else None,
            "count": len(cards), "devices": cards}


def accelerators(run, which) -> list[dict]:
    """One entry per vendor tool found; a node normally has one."""
    found = []
    for tool, reader in (("nvidia-smi", nvidia), ("rocm-smi", amd), ("hl-smi", intel)):
        path = which(tool)
        if path:
            found.append(reader(run, path))
    return found


def nccl_version(root: str, installed: dict[str, str | None]) -> dict | None:
    for package in NCCL_PACKAGES:
        if installed.get(package):
            return {"version": nccl_from_package(installed[package]), "source": f"package {package}"}
    for pattern in NCCL_LIB_GLOBS:
        for path in sorted(glob.glob(_path(root, pattern)), reverse=True):
            if nccl_from_filename(path):
                return {"version": nccl_from_filename(path), "source": "/" + os.path.relpath(path, root)}
    return None


# -- everything -------------------------------------------------------------------------------------
def gather(root: str, run, which, packages: list[str] | None = None, read_gpu_stack: bool = False,
           tools: bool = True, stamp_dir: str = "/etc/gpucloud") -> tuple[dict, list[str]]:
    """All facts, and the problems met on the way (reported as warnings; a node's truth is still worth having)."""
    problems = []
    cmdline = read_cmdline(root)
    image, problem = read_json(root, f"{stamp_dir.rstrip('/')}/image.json")
    problems += [problem] if problem else []
    stack_doc, problem = read_json(root, f"{stamp_dir.rstrip('/')}/gpu-stack.json") if read_gpu_stack else (None, None)
    problems += [problem] if problem else []
    names = list(dict.fromkeys([*(packages or []), *stack_packages(stack_doc), *(NCCL_PACKAGES if tools else ())]))
    installed = query_packages(names, run, which)
    gpus = accelerators(run, which) if tools else []
    problems += [f"{g['tool']}: {g['error']}" for g in gpus if g.get("error")]
    return {
        "cmdline": cmdline,
        "thp": read_thp(root),
        "hugepages": read_hugepages(root),
        "cpu": read_cpu_governor(root),
        "iommu": read_iommu(root, cmdline["params"]),
        "kernel": read_kernel(root),
        "modules": read_modules(root),
        "image": image,
        "packages": {name: installed.get(name) for name in (packages or [])},
        "gpu_stack": gpu_stack(stack_doc, installed),
        "accelerators": gpus,
        "gpu": gpus[0] if gpus else None,
        "nccl": nccl_version(root, installed) if tools else None,
    }, problems
