"""gpucloud.infra.node_facts: parsers on recorded outputs, the readers on recorded /proc and /sys trees, and the
module for real on this machine through Ansible."""

import json
from pathlib import Path

import pytest

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import node_facts as nf
from conftest import BIN, run

FIXTURES = Path(__file__).parent / "fixtures" / "node_facts"
TOOLS = FIXTURES / "tools"


def tool(name: str) -> str:
    return (TOOLS / name).read_text()


@pytest.mark.parametrize(("line", "params", "init"), [
    ("quiet iommu=pt", {"quiet": None, "iommu": "pt"}, []),
    ("hugepagesz=2M hugepages=1024 hugepagesz=1G hugepages=4", {"hugepagesz": "1G", "hugepages": "4"}, []),
    ('dyndbg="file foo.c +p" ro', {"dyndbg": "file foo.c +p", "ro": None}, []),
    ("console=ttyS0 -- --init-flag -- x", {"console": "ttyS0"}, ["--init-flag", "--", "x"]),
    ("", {}, []),
    ("root=UUID=abc=d", {"root": "UUID=abc=d"}, []),
])
def test_parse_cmdline(line, params, init):
    parsed = nf.parse_cmdline(line + "\n")
    assert parsed["params"] == params
    assert parsed["init_args"] == init
    assert parsed["raw"] == line


def test_parse_cmdline_keeps_repeated_parameters_in_order():
    args = nf.parse_cmdline("hugepagesz=2M hugepages=1024 hugepagesz=1G hugepages=4")["args"]
    assert args == [["hugepagesz", "2M"], ["hugepages", "1024"], ["hugepagesz", "1G"], ["hugepages", "4"]]


@pytest.mark.parametrize(("text", "value"), [
    ("always [madvise] never\n", "madvise"),
    ("[always] madvise never", "always"),
    ("always defer defer+madvise [madvise] never", "madvise"),
    ("always defer [defer+madvise] madvise never", "defer+madvise"),
    ("", None),
    (None, None),
])
def test_parse_bracketed(text, value):
    assert nf.parse_bracketed(text) == value


@pytest.mark.parametrize(("policies", "summary"), [
    ({"policy0": "performance", "policy1": "performance"}, "performance"),
    ({"policy0": "performance", "policy1": "powersave"}, "mixed"),
    ({}, None),
])
def test_summarize_governors(policies, summary):
    assert nf.summarize_governors(policies) == summary


def test_parse_nvidia_query():
    gpus = nf.parse_nvidia_query(tool("nvidia-smi-query-gpu.csv"))
    assert len(gpus) == 8
    assert gpus[0] == {"name": "NVIDIA H100 80GB HBM3", "driver_version": "550.54.15", "memory_total_mib": 81559,
                       "persistence_mode": True, "pci_bus_id": "00000000:18:00.0"}


@pytest.mark.parametrize(("name", "cuda"), [("nvidia-smi.txt", "12.4"), ("nvidia-smi-q.txt", "12.4")])
def test_parse_cuda_version(name, cuda):
    assert nf.parse_cuda_version(tool(name)) == cuda


@pytest.mark.parametrize(("name", "driver", "count", "first"), [
    ("rocm-smi.json", "6.8.5", 2, "AMD Instinct MI300X OAM"),
    ("rocm-smi-legacy.json", "5.16.9.22.20", 1, "Instinct MI210"),
])
def test_parse_rocm_smi(name, driver, count, first):
    parsed = nf.parse_rocm_smi(tool(name))
    assert parsed["driver_version"] == driver
    assert len(parsed["devices"]) == count and parsed["devices"][0]["name"] == first


def test_parse_hl_smi():
    cards = nf.parse_hl_smi(tool("hl-smi.csv"))
    assert len(cards) == 4 and cards[0] == {"name": "HL-225", "driver_version": "1.17.0-495e1c3"}


def test_parse_dpkg_query_counts_only_installed_packages():
    assert nf.parse_dpkg_query(tool("dpkg-query.txt")) == {
        "nvidia-driver": "550.54.15-1", "cuda-toolkit-12-4": "12.4.1-1", "libnccl2": "2.21.5-1+cuda12.4",
        "datacenter-gpu-manager": "1:3.3.5", "nvidia-fabricmanager-550": "550.54.15-1"}


@pytest.mark.parametrize(("version", "upstream"), [
    ("2.21.5-1+cuda12.4", "2.21.5"), ("1:550.54.15-1~deb12u1", "550.54.15"), ("1:3.3.5", "3.3.5"),
    ("535.216.01", "535.216.01"), (None, None), ("", None),
])
def test_upstream_version(version, upstream):
    assert nf.upstream_version(version) == upstream


@pytest.mark.parametrize(("path", "version"), [
    ("/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5", "2.21.5"), ("/usr/lib64/libnccl.so.2", None),
    ("/x/libnccl.so.2.18.1", "2.18.1"),
])
def test_nccl_from_filename(path, version):
    assert nf.nccl_from_filename(path) == version


class Replay:
    """Answers tool invocations from the recorded outputs; records what was run."""

    OUTPUTS = {
        ("nvidia-smi", "--query-gpu=name,driver_version,memory.total,persistence_mode,pci.bus_id"):
            "nvidia-smi-query-gpu.csv",
        ("nvidia-smi",): "nvidia-smi.txt",
        ("nvidia-smi", "-q"): "nvidia-smi-q.txt",
        ("rocm-smi", "--showdriverversion"): "rocm-smi.json",
        ("hl-smi", "-Q"): "hl-smi.csv",
        ("dpkg-query", "-W"): "dpkg-query.txt",
    }

    def __init__(self, present):
        self.present, self.calls = set(present), []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.present else None

    def run(self, argv):
        self.calls.append(argv)
        name = Path(argv[0]).name
        key = (name, *argv[1:2])
        if key not in self.OUTPUTS:
            return 1, "", f"{name}: unexpected arguments {argv[1:]}"
        return 0, tool(self.OUTPUTS[key]), ""


def test_gather_on_a_recorded_h100_node():
    replay = Replay({"nvidia-smi", "dpkg-query"})
    facts, problems = nf.gather(str(FIXTURES / "h100-node"), replay.run, replay.which, packages=["nvidia-driver"],
                                read_gpu_stack=True)
    assert problems == []
    assert facts["cmdline"]["params"]["iommu"] == "pt" and facts["cmdline"]["params"]["quiet"] is None
    assert facts["thp"] == {"enabled": "always", "defrag": "madvise"}
    assert facts["hugepages"] == {"sizes": {"1048576": {"total": 0, "free": 0}, "2048": {"total": 1024, "free": 1000}},
                                  "total": 1024, "free": 1000, "default_size_kb": 2048}
    assert facts["cpu"]["governor"] == "performance" and len(facts["cpu"]["policies"]) == 4
    assert facts["iommu"] == {"enabled": True, "units": ["dmar0", "dmar1"], "groups": 4, "domain_types": ["identity"],
                              "mode": "pt", "cmdline": {"intel_iommu": "on", "iommu": "pt"}}
    assert facts["kernel"]["release"] == "6.1.0-35-amd64"
    assert facts["modules"] == {"nouveau": False, "nvidia": True, "nvidia_peermem": True, "amdgpu": False,
                                "habanalabs": False}
    assert facts["image"]["build_key"].startswith("7d3f0c9e")
    assert facts["packages"] == {"nvidia-driver": "550.54.15-1"}
    assert facts["gpu_stack"]["components"]["nccl"] == {"package": "libnccl2", "pinned": "2.21.5-1+cuda12.4",
                                                        "installed": "2.21.5-1+cuda12.4"}
    assert facts["gpu"]["driver_version"] == "550.54.15" and facts["gpu"]["cuda_version"] == "12.4"
    assert facts["gpu"]["count"] == 8
    assert facts["nccl"] == {"version": "2.21.5", "source": "package libnccl2"}
    assert ["/usr/bin/nvidia-smi", "-q"] not in replay.calls  # the banner had the CUDA version


def test_nccl_from_the_library_file_without_a_package():
    replay = Replay(set())  # no dpkg-query, no GPU tool
    facts, _ = nf.gather(str(FIXTURES / "h100-node"), replay.run, replay.which)
    assert facts["nccl"] == {"version": "2.21.5", "source": "/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5"}
    assert facts["gpu"] is None and facts["accelerators"] == []


@pytest.mark.parametrize(("present", "vendor", "driver"), [
    ({"rocm-smi"}, "amd", "6.8.5"), ({"hl-smi"}, "intel", "1.17.0-495e1c3"),
])
def test_gather_other_vendors(present, vendor, driver):
    replay = Replay(present)
    facts, problems = nf.gather(str(FIXTURES / "vm-node"), replay.run, replay.which)
    assert problems == []
    assert facts["gpu"]["vendor"] == vendor and facts["gpu"]["driver_version"] == driver


def test_a_failing_tool_is_a_problem_not_a_crash():
    def run(argv):
        return 9, "", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."

    facts, problems = nf.gather(str(FIXTURES / "vm-node"), run, lambda n: "/usr/bin/nvidia-smi"
                                if n == "nvidia-smi" else None)
    assert facts["gpu"]["error"].startswith("NVIDIA-SMI has failed")
    assert problems == [f"nvidia-smi: {facts['gpu']['error']}"]


def test_gather_on_a_vm_without_cpufreq_iommu_or_modules():
    replay = Replay(set())
    facts, _ = nf.gather(str(FIXTURES / "vm-node"), replay.run, replay.which, read_gpu_stack=True)
    assert facts["cpu"] == {"governor": None, "policies": {}}
    assert facts["iommu"]["enabled"] is False and facts["iommu"]["groups"] == 0
    assert facts["thp"]["enabled"] == "madvise"
    assert facts["cmdline"]["init_args"] == ["--init-flag"]
    assert facts["modules"]["nouveau"] is False  # no /proc/modules: only built-ins, from /sys/module
    assert facts["image"] is None and facts["gpu_stack"] is None and facts["nccl"] is None


def test_an_invalid_image_stamp_is_reported(tmp_path):
    (tmp_path / "etc" / "gpucloud").mkdir(parents=True)
    (tmp_path / "etc" / "gpucloud" / "image.json").write_text("{not json")
    facts, problems = nf.gather(str(tmp_path), Replay(set()).run, Replay(set()).which)
    assert facts["image"] is None
    assert len(problems) == 1 and "/etc/gpucloud/image.json is not valid JSON" in problems[0]


@pytest.mark.slow
def test_the_module_on_this_machine(tmp_path):
    """For real, through Ansible, on localhost: structure, and agreement with what this machine says directly."""
    proc = run([str(BIN / "ansible"), "localhost", "-m", "gpucloud.infra.node_facts", "--check",
                "-a", json.dumps({"packages": ["dpkg", "no-such-package-here"], "gpu_stack": True})],
               env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    facts = result["node_facts"]
    assert set(facts) == {"cmdline", "thp", "hugepages", "cpu", "iommu", "kernel", "modules", "image", "packages",
                          "gpu_stack", "accelerators", "gpu", "nccl"}
    assert facts["cmdline"]["raw"] == Path("/proc/cmdline").read_text().strip()
    assert facts["kernel"]["release"] == Path("/proc/sys/kernel/osrelease").read_text().strip()
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists():
        assert f"[{facts['thp']['enabled']}]" in thp.read_text()
    assert facts["packages"]["dpkg"] and facts["packages"]["no-such-package-here"] is None
    assert isinstance(facts["hugepages"]["sizes"], dict) and isinstance(facts["iommu"]["enabled"], bool)
    assert facts["cpu"]["governor"] in (None, "mixed", *facts["cpu"]["policies"].values())
