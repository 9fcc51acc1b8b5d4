"""playbooks/deploy_image.yml (role image_deploy) against sushy-tools BMCs with virtual media: the fake-driver
BMCs and artifact server of lab.bmc_emulator.vmedia_lab(), since the fleet's libvirt-test BMCs cannot take media.

Insert the right URL, one-time boot to Cd, reset (observed in the power state), a re-run leaves nodes alone,
check mode changes nothing, the image can come from the node's NetBox platform, a bad URL fails clearly."""

import copy
import hashlib
import json
import time

import pytest
import requests

from conftest import ansible_playbook, recaps
from lab import bmc_emulator

pytestmark = pytest.mark.netbox

PLAYBOOK = "playbooks/deploy_image.yml"
NAME, VERSION = "gpu-deploytest", "20261123.1"


def _manifest(version: str, root) -> dict:
    """A manifest as golden_image writes it, with a small raw artifact in the artifact store."""
    data = f"image {version}\n".encode() * 64
    raw = f"{NAME}-{version}.raw"
    (root / raw).write_bytes(data)
    return {"schema_version": 1, "name": NAME, "version": version,
            "build_key": hashlib.sha256(version.encode()).hexdigest(),
            "base": {"distribution": "debian", "suite": "bookworm"}, "kernel": {"release": "6.1.0-35-amd64"},
            "built_at": "2026-11-23T02:40:00Z",
            "artifacts": {"raw": {"file": raw, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}}}


@pytest.fixture(scope="module")
def vmedia(settings, lab_env):
    from pathlib import Path

    info = bmc_emulator.vmedia_lab(settings)
    root = Path(info["artifact_dir"])
    info["manifest"] = _manifest(VERSION, root)
    info["newer"] = _manifest("20261124.1", root)
    info["password"] = lab_env[bmc_emulator.PASSWORD_ENV]
    yield info
    bmc_emulator.stop_vmedia_lab(settings)


@pytest.fixture
def inventory(vmedia, tmp_path):
    """The fake BMCs' nodes, as the gpucloud_netbox inventory would describe them; both powered on, media empty."""
    for bmc in vmedia["bmcs"]:
        BMC(vmedia, bmc).reset_state()
    hosts = {b["name"]: {"bmc_address": b["address"], "bmc_credential_ref": f"env:{bmc_emulator.PASSWORD_ENV}",
                         "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
             for b in vmedia["bmcs"]}
    inv = {"all": {"hosts": hosts, "vars": {
        "image_deploy_manifest": vmedia["manifest"],
        "image_deploy_artifact_base_url": vmedia["artifact_base_url"], "image_deploy_ca_path": vmedia["ca"],
        "image_deploy_bmc_port": vmedia["port"]}}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inv))
    return path


class BMC:
    """Reads (and, to set a test up, drives) one fake BMC directly over Redfish."""

    def __init__(self, vmedia, bmc):
        self.base = f"https://{bmc['address']}:{vmedia['port']}"
        self.session = requests.Session()
        self.session.auth = (bmc_emulator.USERNAME, vmedia["password"])
        self.session.verify = vmedia["ca"]
        self.session.trust_env = False
        self.system_path = self.get("/redfish/v1/Systems")["Members"][0]["@odata.id"]

    def get(self, path):
        resp = self.session.get(self.base + path, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def post(self, path, body):
        self.session.post(self.base + path, json=body, timeout=10).raise_for_status()

    def system(self):
        return self.get(self.system_path)

    def cd(self):
        return self.get(f"{self.system_path}/VirtualMedia/Cd")

    def power(self, reset_type, wanted, deadline_s=60):
        self.post(f"{self.system_path}/Actions/ComputerSystem.Reset", {"ResetType": reset_type})
        deadline = time.monotonic() + deadline_s  # the fake driver applies power changes 1-11 s later
        while self.system()["PowerState"] != wanted:
            assert time.monotonic() < deadline, f"{self.base} did not reach {wanted}"
            time.sleep(0.5)

    def reset_state(self):
        if self.cd()["Inserted"]:
            self.post(f"{self.system_path}/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia", {})
        self.session.patch(self.base + self.system_path, json={"Boot": {"BootSourceOverrideTarget": "Hdd"}},
                           timeout=10).raise_for_status()
        if self.system()["PowerState"] != "On":
            self.power("On", "On")



def play(vmedia, inventory, *args):
    proc = ansible_playbook(PLAYBOOK, "-i", str(inventory), "-e", "image_deploy_hosts=all", *args)
    assert vmedia["password"] not in proc.stdout + proc.stderr
    return proc


def url(vmedia, manifest):
    return f"{vmedia['artifact_base_url']}/{manifest['artifacts']['raw']['file']}"


def test_deploy_then_rerun_then_check(vmedia, inventory):
    bmcs = [BMC(vmedia, b) for b in vmedia["bmcs"]]
    bmcs[1].power("ForceOff", "Off")  # one node off: it is powered on rather than restarted
    wanted = url(vmedia, vmedia["manifest"])

    checked = play(vmedia, inventory, "--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert all(r["changed"] >= 2 for r in recaps(checked).values()), checked.stdout[-3000:]
    assert not bmcs[0].cd()["Inserted"] and bmcs[0].system()["Boot"]["BootSourceOverrideTarget"] == "Hdd"
    assert bmcs[1].system()["PowerState"] == "Off", "check mode must not power anything"

    deployed = play(vmedia, inventory)
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    assert all(r["changed"] == 2 and r["failed"] == 0 for r in recaps(deployed).values()), deployed.stdout[-3000:]
    for bmc in bmcs:
        cd, system = bmc.cd(), bmc.system()
        assert (cd["Image"], cd["Inserted"], cd["WriteProtected"]) == (wanted, True, True)
        assert system["Boot"]["BootSourceOverrideTarget"] == "Cd"
        assert system["PowerState"] == "On"
    # The reset each node got, as the role reports it: a restart for the running one, power-on for the other.
    assert "deployed: power On -> ForceRestart -> On" in deployed.stdout
    assert "deployed: power Off -> On -> On" in deployed.stdout

    for args in ((), ("--check",)):
        again = play(vmedia, inventory, *args)
        assert again.returncode == 0, again.stdout[-3000:]
        assert all(r["changed"] == 0 for r in recaps(again).values()), (args, again.stdout[-3000:])
        assert again.stdout.count("left alone: the virtual CD holds it and the system is on") == 2

    forced = play(vmedia, inventory, "-e", "image_deploy_force=true", "--limit", vmedia["bmcs"][0]["name"])
    assert forced.returncode == 0 and recaps(forced)[vmedia["bmcs"][0]["name"]]["changed"] >= 1
    assert "deployed: power On -> ForceRestart -> On" in forced.stdout


def test_a_new_version_is_deployed_and_eject_with_node_stamp(vmedia, inventory, tmp_path):
    first = play(vmedia, inventory, "--limit", vmedia["bmcs"][0]["name"])
    assert first.returncode == 0, first.stdout[-3000:]
    newer = vmedia["newer"]
    extra = tmp_path / "newer.json"
    stamp = tmp_path / "image.json"
    stamp.write_text(json.dumps({"name": NAME, "version": newer["version"], "build_key": "0" * 64}))
    extra.write_text(json.dumps({"image_deploy_manifest": newer, "image_deploy_eject": True,
                                 "image_deploy_check_node": True, "image_deploy_stamp_path": str(stamp)}))
    bmc = BMC(vmedia, vmedia["bmcs"][0])
    moved = play(vmedia, inventory, "-e", f"@{extra}", "--limit", vmedia["bmcs"][0]["name"])
    assert moved.returncode == 0, moved.stdout[-3000:]
    assert "deployed: power On -> ForceRestart -> On" in moved.stdout
    assert not bmc.cd()["Inserted"] and bmc.system()["PowerState"] == "On"  # ejected once it was up

    # With the medium ejected, only the node's own stamp says it runs the image (as the booted image would).
    stamp.write_text(json.dumps({"name": NAME, "version": newer["version"], "build_key": newer["build_key"]}))
    again = play(vmedia, inventory, "-e", f"@{extra}", "--limit", vmedia["bmcs"][0]["name"])
    assert again.returncode == 0 and recaps(again)[vmedia["bmcs"][0]["name"]]["changed"] == 0, again.stdout[-3000:]
    assert f"left alone: the node stamp has build key {newer['build_key']}" in again.stdout


def test_the_image_comes_from_the_nodes_netbox_platform(vmedia, inventory, restore_fleet_after, tmp_path):
    record = tmp_path / "record.yml"
    record.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"gpucloud.infra.netbox_image": {"manifest": vmedia["newer"]}}]}]))
    assert ansible_playbook(str(record)).returncode == 0
    inv = json.loads(inventory.read_text())
    del inv["all"]["vars"]["image_deploy_manifest"]
    for host in inv["all"]["hosts"].values():
        host["platform"] = f"{NAME}-20261124-1"  # what the inventory plugin exports once NetBox assigns it
    inventory.write_text(json.dumps(inv))
    deployed = play(vmedia, inventory, "--limit", vmedia["bmcs"][0]["name"])
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    assert BMC(vmedia, vmedia["bmcs"][0]).cd()["Image"] == url(vmedia, vmedia["newer"])

    inv["all"]["hosts"][vmedia["bmcs"][0]["name"]]["platform"] = "no-such-image"
    inventory.write_text(json.dumps(inv))
    missing = play(vmedia, inventory, "--limit", vmedia["bmcs"][0]["name"])
    assert missing.returncode != 0 and "no image platform in NetBox for: no-such-image" in missing.stdout


def test_a_bad_artifact_url_fails_clearly_and_changes_nothing(vmedia, inventory):
    bad = copy.deepcopy(vmedia["manifest"])
    bad["artifacts"]["raw"]["file"] = "missing.raw"
    extra = json.dumps({"image_deploy_manifest": bad})
    name = vmedia["bmcs"][0]["name"]
    bmc = BMC(vmedia, vmedia["bmcs"][0])

    proc = play(vmedia, inventory, "-e", extra, "--limit", name)
    assert proc.returncode != 0
    assert f"the image artifact {vmedia['artifact_base_url']}/missing.raw cannot be fetched from the controller" \
        in proc.stdout.replace("\n", " ")
    assert not bmc.cd()["Inserted"]

    # Without the controller's check, the BMC's own download fails, and the error says so.
    proc = play(vmedia, inventory, "-e", extra, "-e", "image_deploy_check_url=false", "--limit", name)
    assert proc.returncode != 0
    text = proc.stdout.replace("\n", " ")
    assert "missing.raw" in text and "Cannot download virtual media: got error 404" in text, proc.stdout[-3000:]
    assert bmc.system()["PowerState"] == "On" and not bmc.cd()["Inserted"]
