"""Image drift: compare() on recorded node facts (data-driven), the fleet report, and playbooks/node_drift.yml end to
end against the lab NetBox with this machine standing in for a GPU server."""

import copy
import json
import sys
import uuid
from pathlib import Path

import pytest

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import image_drift as drift
from ansible_collections.gpucloud.infra.plugins.module_utils import node_facts as nf
from conftest import BIN, ansible_playbook, recaps, run

FIXTURES = Path(__file__).parent / "fixtures" / "node_facts"
TOOLS = {"--query-gpu=name,driver_version,memory.total,persistence_mode,pci.bus_id": "nvidia-smi-query-gpu.csv",
         None: "nvidia-smi.txt", "-W": "dpkg-query.txt"}


def h100_facts() -> dict:
    def run_tool(argv):
        return 0, (FIXTURES / "tools" / TOOLS[argv[1] if len(argv) > 1 else None]).read_text(), ""

    def which(name):
        return f"/usr/bin/{name}" if name in ("nvidia-smi", "dpkg-query") else None

    facts, problems = nf.gather(str(FIXTURES / "h100-node"), run_tool, which, read_gpu_stack=True,
                                packages=["nvidia-driver", "libnccl2"])
    assert problems == []
    return facts


STACK = {"release": "nvidia-550-cuda12.4", "components": {
    "driver": {"package": "nvidia-driver", "version": "550.54.15-1"},
    "cuda": {"package": "cuda-toolkit-12-4", "version": "12.4.1-1"},
    "nccl": {"package": "libnccl2", "version": "2.21.5-1+cuda12.4"},
    "dcgm": {"package": "datacenter-gpu-manager", "version": "1:3.3.5"},
    "fabricmanager": {"package": "nvidia-fabricmanager-550", "version": "550.54.15-1"}}}
MANIFEST = {
    "schema_version": 1, "name": "gpu-debian12", "version": "20261123.1",
    "build_key": "7d3f0c9e5b1a4c2d8e6f7a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
    "kernel": {"release": "6.1.0-35-amd64", "package": "linux-image-6.1.0-35-amd64", "version": "6.1.137-1"},
    "cmdline": "intel_iommu=on iommu=pt transparent_hugepage=always hugepagesz=2M hugepages=1024 "
               "cpufreq.default_governor=performance modprobe.blacklist=nouveau",
    "tuning": {"cpu_governor": "performance", "thp": "always", "hugepages": {"size_kb": 2048, "count": 1024},
               "cpu_vendor": "intel", "iommu": "pt", "nouveau_blacklisted": True},
    "gpu_stack": {"nvidia": STACK},
    "packages": {}, "artifacts": {},
}


def changed(obj: dict, path: str, value) -> dict:
    """A deep copy of obj with the dotted path set to value (a value of ... deletes it)."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def test_a_node_running_its_image_has_no_findings():
    assert drift.compare(MANIFEST, h100_facts()) == []


# (what differs: in the manifest or the facts, dotted path, value) -> the finding expected (or the list of them)
CASES = [
    ("manifest", "build_key", "0" * 64, ("image.build_key", "0" * 64, MANIFEST["build_key"], "critical")),
    ("facts", "image", None, ("image.build_key", MANIFEST["build_key"], None, "critical")),
    ("manifest", "kernel.release", "6.1.0-37-amd64", ("kernel.release", "6.1.0-37-amd64", "6.1.0-35-amd64",
                                                       "critical")),
    ("facts", "thp.enabled", "madvise", ("thp.enabled", "always", "madvise", "warning")),
    ("manifest", "tuning.hugepages", {"size_kb": 2048, "count": 2048}, ("hugepages.2048kB", 2048, 1024, "warning")),
    ("manifest", "tuning.hugepages", {"size_kb": 1048576, "count": 8}, ("hugepages.1048576kB", 8, 0, "warning")),
    ("manifest", "tuning.hugepages", {"size_kb": 16384, "count": 8}, ("hugepages.16384kB", 8, None, "warning")),
    ("facts", "cpu", {"governor": "mixed", "policies": {}}, ("cpu.governor", "performance", "mixed", "warning")),
    ("facts", "cpu", {"governor": None, "policies": {}}, ("cpu.governor", "performance", None, "not_applicable")),
    ("facts", "iommu.enabled", False, ("iommu.enabled", True, False, "warning")),
    ("manifest", "cmdline", MANIFEST["cmdline"] + " pcie_acs_override=downstream",
     ("cmdline.pcie_acs_override", "downstream", None, "warning")),
    ("manifest", "cmdline", "iommu=nopt", ("cmdline.iommu", "nopt", "pt", "warning")),
    ("manifest", "cmdline", "quiet nosmt", ("cmdline.nosmt", True, None, "warning")),
    ("manifest", "cmdline", "hugepagesz=2M hugepages=1024 hugepagesz=1G hugepages=4",
     [("cmdline.hugepagesz", ["2M", "1G"], "2M", "warning"), ("cmdline.hugepages", ["1024", "4"], "1024", "warning")]),
    ("manifest", "gpu_stack.nvidia.components.nccl.version", "2.23.4-1+cuda12.6",
     ("gpu_stack.nvidia.nccl", "libnccl2 2.23.4-1+cuda12.6", "libnccl2 2.21.5-1+cuda12.4", "critical")),
    ("manifest", "gpu_stack.nvidia.release", "nvidia-560", ("gpu_stack.nvidia.release", "nvidia-560",
                                                           "nvidia-550-cuda12.4", "critical")),
    ("facts", "gpu.driver_version", "535.216.01", ("gpu.nvidia.driver_version", "550.54.15", "535.216.01",
                                                   "critical")),
    ("facts", "accelerators", [], ("gpu.nvidia.driver_version", "550.54.15", None, "critical")),
]


@pytest.mark.parametrize(("side", "path", "value", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_each_skew_is_found(side, path, value, expected):
    facts = h100_facts()
    if path == "gpu.driver_version":  # the loaded driver is the accelerators' entry
        facts["accelerators"][0]["driver_version"] = value
    elif side == "facts":
        facts = changed(facts, path, value)
    manifest = changed(MANIFEST, path, value) if side == "manifest" else MANIFEST
    findings = drift.compare(manifest, facts)
    expected = expected if isinstance(expected, list) else [expected]
    assert [(f["field"], f["expected"], f["actual"], f["severity"]) for f in findings] == expected


@pytest.mark.parametrize(("actual_line", "ok"), [
    ("intel_iommu=on iommu=pt", True),
    ("intel-iommu=on iommu=pt", True),  # '-' and '_' are the same in parameter names
    ("intel_iommu=off iommu=pt intel_iommu=on", True),  # the last value wins
    ("intel_iommu=on iommu=pt intel_iommu=off", False),
    ("iommu=pt", False),
])
def test_cmdline_matching(actual_line, ok):
    findings = drift.compare_cmdline("intel_iommu=on iommu=pt", nf.parse_cmdline(actual_line)["args"])
    assert (findings == []) is ok


@pytest.mark.parametrize(("expected", "actual", "ok"), [
    ("550.54.15", "550.54.15", True), ("6.7.0.60100", "6.7.0", True), ("550.54.15", "550.54.14", False),
    ("550.54.15", None, False), ("5.5", "550.54.15", False),
])
def test_driver_matching(expected, actual, ok):
    assert drift.driver_matches(expected, actual) is ok


def test_not_applicable_is_not_drift():
    findings = [drift.finding("cpu.governor", "performance", None, "not_applicable")]
    assert not drift.drifted(findings)
    assert drift.drifted(findings, fail_on=["not_applicable"])


def test_manifest_validation_lists_every_problem():
    errors = drift.validate_manifest({"name": "", "kernel": {}, "cmdline": 3, "tuning": {"hugepages": {"count": 1}},
                                      "gpu_stack": {"nvidia": "550"}})
    assert errors == ["manifest.name must be a non-empty string", "manifest.version must be a non-empty string",
                      "manifest.build_key must be a non-empty string",
                      "manifest.kernel.release must be a string (e.g. 6.1.0-35-amd64)",
                      "manifest.cmdline must be a string of kernel parameters",
                      "manifest.tuning.hugepages must be {size_kb: int, count: int}",
                      "manifest.gpu_stack must map a vendor to {release, components}"]
    assert drift.validate_manifest(MANIFEST) == []
    assert drift.validate_manifest([]) == ["manifest must be a JSON object, got list"]


def test_manifest_packages():
    assert drift.manifest_packages(MANIFEST) == sorted(c["package"] for c in STACK["components"].values())
    assert drift.manifest_packages(None) == []


def test_fleet_report_table_and_journal():
    findings = drift.compare(changed(MANIFEST, "tuning.thp", "never"), h100_facts())
    report = drift.fleet_report({
        "gpu-002": {"platform": "gpu-debian12-20261123-1", "image": "gpu-debian12 20261123.1", "status": "drift",
                    "findings": findings},
        "gpu-001": {"platform": "gpu-debian12-20261123-1", "image": "gpu-debian12 20261123.1", "status": "in_sync",
                    "findings": []},
        "gpu-003": {"platform": None, "image": None, "status": "no_image", "findings": []},
    }, "2026-11-23T03:00:00Z", not_checked=["gpu-004"])
    assert list(report["nodes"]) == ["gpu-001", "gpu-002", "gpu-003", "gpu-004"]
    assert report["summary"] == {"drift": 1, "in_sync": 1, "no_image": 1, "not_checked": 1}
    assert report["drifted_nodes"] == ["gpu-002"] and report["unassigned_nodes"] == ["gpu-003"]
    table = drift.markdown_table(report)
    assert "| gpu-002 | gpu-debian12 20261123.1 | drift | thp.enabled: always (want never) |" in table
    entries = drift.journal_entries(report, {"gpu-002": 42, "gpu-001": 41})
    assert entries == [{"device_id": 42, "kind": "warning", "comments": (
        "Node drift: gpu-002 differs from image gpu-debian12 20261123.1\n\n"
        "- **thp.enabled** (warning): always, image has never")}]


# -- end to end ------------------------------------------------------------------------------------------------------
INVENTORY = "inventory/fleet.gpucloud_netbox.yml"


def local_facts(stamp_dir: Path) -> dict:
    proc = run([str(BIN / "ansible"), "localhost", "-m", "gpucloud.infra.node_facts",
                "-a", json.dumps({"stamp_dir": str(stamp_dir), "gpu_stack": True})],
               env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["node_facts"]


def manifest_of(facts: dict, build_key: str) -> dict:
    """A manifest this machine satisfies: its kernel, a few of its real kernel parameters, its THP and hugepages, and
    the governor of a GPU image (this VM has no cpufreq: not applicable, not drift)."""
    size = sorted(facts["hugepages"]["sizes"])[0] if facts["hugepages"]["sizes"] else "2048"
    params = " ".join(f"{k}={v}" if v is not None else k for k, v in facts["cmdline"]["args"][:3])
    return {"schema_version": 1, "name": "drift-test", "version": "1.0", "build_key": build_key,
            "kernel": {"release": facts["kernel"]["release"]}, "cmdline": params,
            "tuning": {"thp": facts["thp"]["enabled"], "cpu_governor": "performance",
                       "hugepages": {"size_kb": int(size),
                                     "count": (facts["hugepages"]["sizes"].get(size) or {}).get("total") or 0}},
            "gpu_stack": {}}



@pytest.fixture
def image_platform(nb, fleet, tmp_path):
    """A NetBox platform carrying a manifest of this machine, assigned to one lab server; all undone afterwards."""
    created_field = None
    if not nb.list("extras/custom-fields", name=drift.MANIFEST_CF):
        # The data model (module_utils/datamodel.py) defines it; a NetBox set up before that gets it here.
        created_field = nb.create("extras/custom-fields", [{"name": drift.MANIFEST_CF, "type": "json",
                                                            "object_types": ["dcim.platform"]}])[0]
    stamp = tmp_path / "stamp"
    stamp.mkdir()
    build_key = uuid.uuid4().hex * 2
    (stamp / "image.json").write_text(json.dumps({"name": "drift-test", "version": "1.0", "build_key": build_key}))
    manifest = manifest_of(local_facts(stamp), build_key)
    slug = f"drift-test-{uuid.uuid4().hex[:8]}"
    platform = nb.create("dcim/platforms", [{"name": slug, "slug": slug,
                                             "custom_fields": {drift.MANIFEST_CF: manifest}}])[0]
    server = fleet.servers[-5].name  # the last four are test_bios_role's
    device = nb.list("dcim/devices", name=server)[0]
    before = (device.get("platform") or {}).get("id")
    journal_before = {j["id"] for j in journal(nb, device["id"])}
    nb.update("dcim/devices", [{"id": device["id"], "platform": platform["id"]}])
    yield {"nb": nb, "platform": platform, "manifest": manifest, "device": device, "stamp": stamp, "server": server}
    nb.update("dcim/devices", [{"id": device["id"], "platform": before}])
    added = [{"id": j["id"]} for j in journal(nb, device["id"]) if j["id"] not in journal_before]
    if added:
        nb.request("DELETE", "extras/journal-entries", payload=added)
    nb.request("DELETE", f"dcim/platforms/{platform['id']}")
    if created_field:
        nb.request("DELETE", f"extras/custom-fields/{created_field['id']}")


def journal(nb, device_id):
    return nb.list("extras/journal-entries", assigned_object_type="dcim.device", assigned_object_id=device_id)


def drift_play(ctx, report: Path):
    return ansible_playbook("playbooks/node_drift.yml", "-i", INVENTORY, "--limit", ctx["server"],
                            "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
                            "-e", f"node_drift_stamp_dir={ctx['stamp']}", "-e", f"node_drift_report={report}")


@pytest.mark.netbox
@pytest.mark.slow
def test_node_drift_end_to_end(image_platform, tmp_path):
    ctx, nb = image_platform, image_platform["nb"]
    device_id = ctx["device"]["id"]
    journal_before = len(journal(nb, device_id))

    ok = drift_play(ctx, tmp_path / "in-sync.json")
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert recaps(ok)[ctx["server"]]["failed"] == 0
    report = json.loads((tmp_path / "in-sync.json").read_text())
    node = report["nodes"][ctx["server"]]
    assert node["status"] == "in_sync" and node["image"] == "drift-test 1.0"
    assert [f["field"] for f in node["findings"]] == ["cpu.governor"]  # not applicable here, reported only
    assert f"| {ctx['server']} | drift-test 1.0 | in_sync | - |" in (tmp_path / "in-sync.md").read_text()
    assert len(journal(nb, device_id)) == journal_before

    other = {"always": "never"}.get(ctx["manifest"]["tuning"]["thp"], "always")
    skewed = {**ctx["manifest"], "tuning": {**ctx["manifest"]["tuning"], "thp": other}}
    nb.update("dcim/platforms", [{"id": ctx["platform"]["id"], "custom_fields": {drift.MANIFEST_CF: skewed}}])
    bad = drift_play(ctx, tmp_path / "drift.json")
    assert bad.returncode != 0
    assert recaps(bad)[ctx["server"]]["failed"] == 1, bad.stdout[-4000:]
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["drifted_nodes"] == [ctx["server"]]
    assert {"field": "thp.enabled", "expected": other, "actual": ctx["manifest"]["tuning"]["thp"],
            "severity": "warning"} in report["nodes"][ctx["server"]]["findings"]
    entries = journal(nb, device_id)
    assert len(entries) == journal_before + 1
    newest = max(entries, key=lambda j: j["id"])
    assert newest["kind"]["value"] == "warning"
    assert "thp.enabled" in newest["comments"] and "drift-test 1.0" in newest["comments"]
    assert "TOKEN" not in newest["comments"].upper()
