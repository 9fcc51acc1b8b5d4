"""Role os_tuning: the kernel cmdline per CPU vendor and node type, input checks, the live-tunable module on real
files, the PCIe ACS script against stand-in lspci/setpci, and check mode on a real image root changing nothing.
The converge/idempotence/boot checks are the role's Molecule scenario (tests/test_molecule.py)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "os_tuning"
BIN = Path(sys.executable).parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filters = _load(ROLE / "filter_plugins" / "os_tuning.py", "os_tuning_filters")
DEFAULTS = {"default": {"size": "2M", "count": 0}, "hgx-h100-8gpu": {"size": "2M", "count": 1024},
            "hgx-b200-8gpu": {"size": "1G", "count": 64}}


def _env():
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "ANSIBLE_NOCOLOR": "1"}


@pytest.mark.parametrize(("vendor", "node_type", "expected"), [
    ("intel", "hgx-h100-8gpu", "intel_iommu=on iommu=pt transparent_hugepage=always default_hugepagesz=2M "
     "hugepagesz=2M hugepages=1024 cpufreq.default_governor=performance modprobe.blacklist=nouveau"),
    ("amd", "hgx-b200-8gpu", "amd_iommu=on iommu=pt transparent_hugepage=always default_hugepagesz=1G "
     "hugepagesz=1G hugepages=64 cpufreq.default_governor=performance modprobe.blacklist=nouveau"),
    ("arm", "gb200-nvl72-tray", "iommu.passthrough=1 transparent_hugepage=always "
     "cpufreq.default_governor=performance modprobe.blacklist=nouveau"),
    ("any", "unknown-type", "intel_iommu=on amd_iommu=on iommu=pt transparent_hugepage=always "
     "cpufreq.default_governor=performance modprobe.blacklist=nouveau"),
])
def test_cmdline_per_vendor_and_node_type(vendor, node_type, expected):
    settings = {"cpu_vendor": vendor, "iommu_passthrough": True, "thp": "always", "cpu_governor": "performance",
                "hugepages": filters.os_tuning_hugepages(DEFAULTS, node_type), "blacklist_nouveau": True,
                "extra_cmdline": []}
    assert filters.os_tuning_cmdline(settings) == expected


def test_cmdline_extra_params_follow_without_duplicates():
    settings = {"cpu_vendor": "intel", "iommu_passthrough": False, "thp": "madvise", "cpu_governor": "schedutil",
                "hugepages": {"size": "2M", "size_kb": 2048, "count": 0}, "blacklist_nouveau": False,
                "extra_cmdline": ["iommu=pt", "mitigations=off"]}
    assert filters.os_tuning_cmdline(settings) == (
        "intel_iommu=on transparent_hugepage=madvise cpufreq.default_governor=schedutil iommu=pt mitigations=off")


@pytest.mark.parametrize(("cpuinfo", "arch", "vendor"), [
    ("processor\t: 0\nvendor_id\t: GenuineIntel\n", "x86_64", "intel"),
    ("processor\t: 0\nvendor_id\t: AuthenticAMD\n", "x86_64", "amd"),
    ("processor\t: 0\nCPU implementer\t: 0x41\n", "aarch64", "arm"),
    ("", "x86_64", ""),
])
def test_cpu_vendor_detection(cpuinfo, arch, vendor):
    assert filters.os_tuning_cpu_vendor(cpuinfo, arch) == vendor


def test_problems_are_reported_all_at_once():
    problems = filters.os_tuning_problems({
        "hugepages_by_node_type": {"hgx-h100-8gpu": {"size": "4M", "count": -1}, "x": "big"},
        "cpu_vendor": "via", "gpu_vendor": "nvidia", "thp": "always", "cpu_governor": "performance",
        "sysctl": {"vm.swappiness": [1], "noddots": 1}, "extra_cmdline": ["a b"]})
    text = "\n".join(problems)
    for fragment in ("needs a 'default' entry", "[hgx-h100-8gpu].size must be 2M or 1G, got '4M'",
                     "[hgx-h100-8gpu].count must be a non-negative integer, got -1", "[x] must be a mapping",
                     "os_tuning_cpu_vendor must be one of", "os_tuning_sysctl[vm.swappiness]",
                     "os_tuning_sysctl[noddots]", "os_tuning_extra_cmdline"):
        assert fragment in text, text
    assert len(problems) == 8


def test_preflight_fails_naming_every_bad_field(tmp_path):
    playbook = tmp_path / "bad.yml"
    playbook.write_text("""
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: os_tuning
      vars:
        os_tuning_hugepages_by_node_type: {default: {size: 3M, count: 1}, big: {size: 1G, count: true}}
        os_tuning_sysctl: {vm.swappiness: {nested: 1}}
""")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)], env=_env(),
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0
    for fragment in ("[default].size must be 2M or 1G, got '3M'", "[big].count must be a non-negative integer",
                     "os_tuning_sysctl[vm.swappiness]"):
        assert fragment in proc.stdout, proc.stdout[-3000:]


def _sysfs(settings: dict, check=False):
    args = [str(BIN / "ansible"), "localhost", "-c", "local", "-m", "gpucloud.infra.sysfs",
            "-a", json.dumps({"settings": settings}), "-o", "--diff"] + (["--check"] if check else [])
    proc = subprocess.run(args, env=_env(), capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # One line per host with -o: "localhost | CHANGED => {...}"; warnings go to stderr.
    line = next(x for x in proc.stdout.splitlines() if x.startswith("localhost |"))
    return json.loads(line.split(" => ", 1)[1])


def test_sysfs_module_reads_compares_writes(tmp_path):
    thp, rmem, gov0, gov1 = (tmp_path / n for n in ("thp", "rmem", "gov0", "gov1"))
    thp.write_text("always [madvise] never\n")
    rmem.write_text("4096\t87380\t6291456\n")
    gov0.write_text("powersave\n")
    gov1.write_text("performance\n")
    settings = {str(thp): "always", str(rmem): "4096 87380 6291456", str(tmp_path / "gov*"): "performance",
                str(tmp_path / "absent"): "1"}

    planned = _sysfs(settings, check=True)
    assert planned["changed"] and gov0.read_text() == "powersave\n" and thp.read_text().startswith("always [")
    assert planned["missing"] == [str(tmp_path / "absent")]

    applied = _sysfs(settings)
    assert applied["changed"]
    assert applied["before"][str(thp)] == "madvise" and applied["after"][str(gov0)] == "performance"
    assert rmem.read_text() == "4096\t87380\t6291456\n"  # equal once whitespace is normalised: not rewritten
    assert thp.read_text() == "always" and gov0.read_text() == "performance"

    assert not _sysfs(settings)["changed"]


def test_sysfs_module_skips_what_it_cannot_write(tmp_path):
    ro = tmp_path / "ro"
    ro.write_text("0\n")
    ro.chmod(0o444)
    if os.access(ro, os.W_OK):  # root ignores file modes: use a read-only bind mount instead
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        (mnt / "ro").write_text("0\n")
        if subprocess.run(["mount", "--bind", "-o", "ro", str(mnt), str(mnt)], capture_output=True).returncode:
            pytest.skip("cannot make a read-only mount here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        ro = mnt / "ro"
    try:
        result = _sysfs({str(ro): "5"})
        assert not result["changed"] and str(ro) in result["unwritable"]
    finally:
        subprocess.run(["umount", str(tmp_path / "mnt")], capture_output=True)


def test_pcie_acs_script_clears_acs_on_bridges_only(tmp_path):
    """The real script, with lspci/setpci stand-ins: 3 bridges (ACS on, ACS already off, no ACS capability)."""
    log = tmp_path / "setpci.log"
    (tmp_path / "lspci").write_text(
        "#!/bin/sh\n[ \"$*\" = '-D -n -d ::0604' ] || exit 2\n"
        "printf '0000:00:01.0 0604: 8086:1234\\n0000:00:02.0 0604: 8086:1234\\n0000:00:03.0 0604: 8086:1234\\n'\n")
    (tmp_path / "setpci").write_text(f"""#!/bin/sh
echo "$*" >> {log}
case "$*" in
  "-s 0000:00:01.0 ECAP_ACS+0x6.w") echo 001d ;;
  "-s 0000:00:02.0 ECAP_ACS+0x6.w") echo 0000 ;;
  "-s 0000:00:03.0 ECAP_ACS+0x6.w") exit 1 ;;
esac
""")
    for tool in ("lspci", "setpci"):
        (tmp_path / tool).chmod(0o755)
    proc = subprocess.run([str(ROLE / "files" / "gpucloud-pcie-acs")], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0000:00:01.0: ACS control 001d -> 0000\n"
    writes = [line for line in log.read_text().splitlines() if "=" in line]
    assert writes == ["-s 0000:00:01.0 ECAP_ACS+0x6.w=0000"]


@pytest.mark.slow
def test_check_mode_on_an_image_root_changes_nothing(tmp_path, base_tarball):
    root = tmp_path / "root"
    root.mkdir()
    base = os.environ.get("GPUCLOUD_OS_TUNING_BASE") or base_tarball
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-xpf", str(base), "-C", str(root)], check=True)

    def snapshot():
        out = subprocess.run(["find", "etc", "usr/local", "boot", "-printf", r"%p %s %T@ %m\n"], cwd=root,
                             capture_output=True, text=True, check=True).stdout
        return sorted(out.splitlines())

    before = snapshot()
    playbook = tmp_path / "check.yml"
    playbook.write_text("""
- hosts: all
  gather_facts: false
  roles:
    - role: os_tuning
      vars: {os_tuning_cpu_vendor: amd, os_tuning_node_type: mi300x-8gpu, os_tuning_gpu_vendor: nvidia}
""")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", f"{root},", "-c", "community.general.chroot",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", "--check", "--diff", str(playbook)],
                          env=_env(), capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "amd_iommu=on iommu=pt" in proc.stdout  # the diff shows the cmdline it would write
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    assert "changed=0" not in recap and "failed=0" in recap
    assert snapshot() == before
