"""Boot the built image under qemu (software emulation) and read the tuning back from inside it:
the effective kernel command line, THP and the hugepage reservation; then the same through
gpucloud.infra.node_facts over SSH, as node_drift sees a real node.

A boot takes minutes under emulation, so it runs when the image changed: a passing boot is
remembered per build key (which covers the image roles' content) and not repeated.
"""

import json
import os
import subprocess

import pytest
from image_support import BIN, HUGEPAGES, REPO, STATE, booted, ssh, ssh_key

BOOTED = STATE / "booted"


@pytest.fixture(scope="module")
def vm(request, built_image, image_output):
    marker = BOOTED / built_image["build_key"]
    if marker.exists() and not os.environ.get("GPUCLOUD_IMAGE_BOOT_ALWAYS"):
        pytest.skip(f"this image (build key {built_image['build_key'][:12]}) already passed its boot test; "
                    "set GPUCLOUD_IMAGE_BOOT_ALWAYS=1 to boot it again")
    failed_before = request.session.testsfailed
    with booted(built_image, image_output, STATE / "console.log") as port:
        yield port
    if request.session.testsfailed == failed_before:  # every boot test passed: remember this build
        BOOTED.mkdir(parents=True, exist_ok=True)
        marker.write_text(built_image["version"] + "\n")


def test_cmdline_is_effective(vm, built_image):
    effective = ssh(vm, "cat /proc/cmdline").split()
    for param in built_image["cmdline"].split():
        assert param in effective, param


def test_thp_is_always(vm):
    assert "[always]" in ssh(vm, "cat /sys/kernel/mm/transparent_hugepage/enabled")


def test_hugepages_are_reserved(vm):
    meminfo = dict(line.split(":", 1) for line in ssh(vm, "cat /proc/meminfo").splitlines())
    assert int(meminfo["HugePages_Total"]) == HUGEPAGES
    assert meminfo["Hugepagesize"].split()[0] == "2048"


def test_node_runs_the_image_it_was_built_as(vm, built_image):
    identity = json.loads(ssh(vm, "cat /etc/gpucloud/image.json"))
    assert identity["build_key"] == built_image["build_key"]
    assert ssh(vm, "uname -r").strip() == built_image["kernel"]["release"]
    assert ssh(vm, "test -s /etc/machine-id && echo fresh").strip() == "fresh"  # made at first boot


def test_node_facts_reads_the_tuning(vm, built_image, tmp_path):
    inventory = tmp_path / "vm.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"vm": {
        "ansible_host": "127.0.0.1", "ansible_port": vm, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(ssh_key()), "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}}}}))
    env = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    proc = subprocess.run([str(BIN / "ansible"), "vm", "-i", str(inventory), "-m", "gpucloud.infra.node_facts"],
                          cwd=REPO, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    facts = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["vm"]["node_facts"]
    assert facts["thp"]["enabled"] == "always"
    assert facts["kernel"]["release"] == built_image["kernel"]["release"]
    assert facts["image"]["build_key"] == built_image["build_key"]



@pytest.mark.netbox
def test_drift_on_the_booted_node_is_caught(vm, built_image, image_output, nb, fleet, restore_fleet_after,
                                            tmp_path):
    """The image recorded in NetBox and assigned to a lab server whose connection is the booted VM: node_drift
    passes; after THP is changed on the node it fails that node, reports the finding and journals it."""
    server = fleet.servers[0].name
    manifest_path = image_output / f"{built_image['name']}-{built_image['version']}.manifest.json"
    record = subprocess.run([str(BIN / "ansible"), "localhost", "-m", "gpucloud.infra.netbox_image", "-a",
                             json.dumps({"manifest_path": str(manifest_path), "devices": [server]})],
                            cwd=REPO, capture_output=True, text=True)
    assert record.returncode == 0, record.stdout[-3000:]
    node = tmp_path / "node.yml"
    node.write_text(json.dumps({"all": {"hosts": {server: {
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": vm, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(ssh_key()), "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}}}}))

    def drift(report):
        return subprocess.run([str(BIN / "ansible-playbook"), "playbooks/node_drift.yml",
                               "-i", "inventory/fleet.gpucloud_netbox.yml", "-i", str(node), "--limit", server,
                               "-e", f"node_drift_report={report}"], cwd=REPO, capture_output=True, text=True)

    ok = drift(tmp_path / "ok.json")
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert json.loads((tmp_path / "ok.json").read_text())["nodes"][server]["status"] == "in_sync"

    ssh(vm, "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled")
    bad = drift(tmp_path / "bad.json")
    assert bad.returncode != 0
    report = json.loads((tmp_path / "bad.json").read_text())
    assert report["drifted_nodes"] == [server]
    assert {"field": "thp.enabled", "expected": "always", "actual": "madvise", "severity": "warning"} in \
        report["nodes"][server]["findings"]
    device = nb.list("dcim/devices", name=server)[0]
    entries = nb.list("extras/journal-entries", assigned_object_type="dcim.device", assigned_object_id=device["id"])
    assert any("thp.enabled" in e["comments"] and built_image["version"] in e["comments"] for e in entries)
