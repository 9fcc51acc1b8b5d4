"""The bios_tuning role and playbooks against the lab's emulated BMCs: check / apply / re-apply, the drift audit
with NetBox journal entries, invalid attributes, an unreachable BMC, and no BMC password in any output."""

import json

import pytest
import requests
import yaml

from conftest import ansible_playbook, recaps
from lab import bmc_emulator

pytestmark = [pytest.mark.netbox, pytest.mark.slow]

INVENTORY = "inventory/fleet.gpucloud_netbox.yml"
# The last servers of the demo fleet: other tests (test_bmc_lab, molecule) use the first BMCs.
TEST_NODES = 4


@pytest.fixture(scope="module")
def nodes(fleet, lab_env):
    return [{"name": s.name, "bmc": s.bmc_ip.split("/")[0]} for s in fleet.servers[-TEST_NODES:]]


@pytest.fixture(scope="module")
def password(lab_env):
    return lab_env["GPUCLOUD_LAB_BMC_PASSWORD"]


@pytest.fixture(scope="module")
def bmc(lab_env, password):
    session = requests.Session()
    session.auth = ("admin", password)
    session.verify = lab_env["GPUCLOUD_LAB_BMC_CA"]
    session.trust_env = False
    yield session
    session.close()


def bios_url(bmc, address):
    base = f"https://{address}:{bmc_emulator.port()}"
    system = bmc.get(f"{base}/redfish/v1/Systems", timeout=10).json()["Members"][0]["@odata.id"]
    return f"{base}{system}/BIOS"


def turbo(bmc, address):
    return bmc.get(bios_url(bmc, address), timeout=10).json()["Attributes"]["ProcTurboMode"]


def set_turbo(bmc, address, value):
    resp = bmc.patch(bios_url(bmc, address) + "/Settings", json={"Attributes": {"ProcTurboMode": value}}, timeout=10)
    assert resp.status_code in (200, 202, 204), resp.text
    assert turbo(bmc, address) == value


@pytest.fixture
def turbo_restored(bmc, nodes):
    """The emulators start with turbo Enabled (what the profile wants); put that back whatever happens."""
    yield
    for node in nodes:
        if turbo(bmc, node["bmc"]) != "Enabled":
            set_turbo(bmc, node["bmc"], "Enabled")



def no_secret(password, *texts):
    for text in texts:
        assert password not in text


def play(playbook, *args, password=None):
    proc = ansible_playbook(playbook, "-i", INVENTORY, *args)
    if password:
        no_secret(password, proc.stdout, proc.stderr)
    return proc


def device(nb, name):
    return nb.list("dcim/devices", name=name)[0]


def journal(nb, device_id):
    return nb.list("extras/journal-entries", assigned_object_type="dcim.device", assigned_object_id=device_id)


def test_check_then_apply_then_reapply(bmc, nodes, nb, password, turbo_restored):
    targets = nodes[:3]
    limit = ",".join(n["name"] for n in targets)
    for node in targets:
        set_turbo(bmc, node["bmc"], "Disabled")
    dev = device(nb, targets[0]["name"])
    journal_before = {j["id"] for j in journal(nb, dev["id"])}

    check = play("playbooks/bios_tune.yml", "--limit", limit, "--check", "--diff", password=password)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    counts = recaps(check)
    assert all(counts[n["name"]]["changed"] >= 1 for n in targets), counts
    assert [turbo(bmc, n["bmc"]) for n in targets] == ["Disabled"] * 3  # nothing sent in check mode
    assert {j["id"] for j in journal(nb, dev["id"])} == journal_before  # nor written to NetBox

    apply = play("playbooks/bios_tune.yml", "--limit", limit, "-vvv", password=password)
    assert apply.returncode == 0, apply.stdout[-3000:] + apply.stderr[-2000:]
    counts = recaps(apply)
    assert all(counts[n["name"]]["changed"] >= 1 and counts[n["name"]]["failed"] == 0 for n in targets), counts
    assert [turbo(bmc, n["bmc"]) for n in targets] == ["Enabled"] * 3
    new = [j for j in journal(nb, dev["id"]) if j["id"] not in journal_before]
    assert len(new) == 1, new
    assert "ProcTurboMode" in new[0]["comments"] and "Disabled → Enabled" in new[0]["comments"]
    no_secret(password, new[0]["comments"])

    again = play("playbooks/bios_tune.yml", "--limit", limit, password=password)
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(c["changed"] == 0 for c in recaps(again).values()), again.stdout[-3000:]
    checked = play("playbooks/bios_tune.yml", "--limit", limit, "--check", password=password)
    assert all(c["changed"] == 0 for c in recaps(checked).values()), checked.stdout[-3000:]
    assert len(journal(nb, dev["id"])) == len(journal_before) + 1


def test_the_audit_reports_drift_and_journals_it(bmc, nodes, nb, password, tmp_path, turbo_restored):
    drifted = nodes[1]
    set_turbo(bmc, drifted["bmc"], "Disabled")
    dev = device(nb, drifted["name"])
    journal_before = {j["id"] for j in journal(nb, dev["id"])}
    report_path = tmp_path / "audit.json"

    proc = play("playbooks/bios_audit.yml", "--limit", ",".join(n["name"] for n in nodes),
                "-e", f"bios_tuning_audit_report={report_path}", password=password)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert turbo(bmc, drifted["bmc"]) == "Disabled"  # the audit changes nothing on the BMCs
    raw = report_path.read_text()
    no_secret(password, raw)
    report = json.loads(raw)
    assert report["audited"] == len(nodes) and report["failed_nodes"] == []
    assert report["drifted_nodes"] == [drifted["name"]]
    assert report["attributes"]["ProcTurboMode"]["drifted"] == 1
    assert report["attributes"]["ProcTurboMode"]["nodes"] == {
        drifted["name"]: {"current": "Disabled", "desired": "Enabled", "pending": False}}
    assert "ProcTurboMode: 1 node(s) differ" in proc.stdout

    new = [j for j in journal(nb, dev["id"]) if j["id"] not in journal_before]
    assert len(new) == 1, new
    assert new[0]["kind"]["value"] == "warning"
    assert "ProcTurboMode" in new[0]["comments"] and "Disabled" in new[0]["comments"]
    no_secret(password, new[0]["comments"])
    # The in-line nodes got no entry.
    other = device(nb, nodes[0]["name"])
    assert not [j for j in journal(nb, other["id"]) if "BIOS drift" in j["comments"] and j["id"] > new[0]["id"]]


@pytest.mark.parametrize("attributes, expected", [
    ({"ProcTurboMod": "Enabled"}, ["ProcTurboMod", "unknown attribute", "ProcTurboMode"]),
    ({"ProcTurboMode": "Sometimes"}, ["ProcTurboMode", "value not allowed", "Enabled", "Disabled"]),
])
def test_invalid_attributes_fail_listing_the_allowed_values(bmc, nodes, password, attributes, expected):
    before = turbo(bmc, nodes[0]["bmc"])
    proc = play("playbooks/bios_tune.yml", "--limit", nodes[0]["name"],
                "-e", json.dumps({"bios_tuning_attributes": attributes}), password=password)
    assert proc.returncode != 0
    assert recaps(proc)[nodes[0]["name"]]["failed"] == 1
    fatal = [line for line in proc.stdout.splitlines() if "allowed:" in line]
    assert fatal, proc.stdout[-3000:]
    for word in expected:
        assert word in fatal[0], fatal[0]
    assert turbo(bmc, nodes[0]["bmc"]) == before


def test_an_unreachable_bmc_fails_only_its_host(nodes, nb, password, tmp_path):
    hosts = {}
    for node in nodes[:2]:
        hosts[node["name"]] = {"bmc_address": node["bmc"], "bmc_credential_ref": "env:GPUCLOUD_LAB_BMC_PASSWORD",
                               "netbox_id": device(nb, node["name"])["id"]}
    hosts["gpu-lost-n01"] = {"bmc_address": "127.100.255.254", "bmc_credential_ref": "env:GPUCLOUD_LAB_BMC_PASSWORD",
                             "netbox_id": 999999}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"role_gpu_server": {"hosts": hosts}}))

    proc = ansible_playbook("playbooks/bios_tune.yml", "-i", str(inventory), "-e", "bios_tuning_reboot_timeout=30")
    no_secret(password, proc.stdout, proc.stderr)
    assert proc.returncode != 0
    counts = recaps(proc)
    assert counts["gpu-lost-n01"]["failed"] == 1
    assert "127.100.255.254" in proc.stdout
    for node in nodes[:2]:
        assert counts[node["name"]]["failed"] == 0 and counts[node["name"]]["unreachable"] == 0, counts
