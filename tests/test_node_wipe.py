"""The node_wipe role (playbooks/node_wipe.yml) and its Redfish pieces.

Unit tests hold the request-building logic to Redfish (Drive.SecureErase, VirtualMedia eject, boot override) with a
stand-in BMC, since the lab's sushy-tools exposes no drives (its Storage collection answers 500 unless storage is
configured, and its Drive resources advertise no SecureErase). The lab test wipes fleet nodes from NetBox against
their emulated BMCs: check mode changes nothing, apply wipes and journals, a re-run changes nothing."""

import copy
import hashlib
import json

import pytest
import requests

from ansible_collections.gpucloud.infra.plugins.module_utils import redfish_drives, redfish_release
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import RedfishError
from conftest import REPO, ansible_playbook, recaps
from lab import bmc_emulator

SYSTEM = "/redfish/v1/Systems/1"
DRIVE = f"{SYSTEM}/Storage/RAID/Drives/0"


def load_filters():
    import importlib.util

    spec = importlib.util.spec_from_file_location("node_wipe_filters",
                                                  REPO / "roles/node_wipe/filter_plugins/node_wipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Answer:
    def __init__(self, status=204, location=None):
        self.status_code = status
        self.headers = {"Location": location} if location else {}


class FakeBMC:
    """A Redfish service of fixed resources; records what is posted and patched. A resource given as an int is
    an error status; a list is a task monitor's successive answers."""

    address = "bmc.test"

    def __init__(self, resources, post_answer=None):
        self.resources = copy.deepcopy(resources)
        self.post_answer = post_answer or Answer()
        self.sent = []

    def system(self):
        return self.get(SYSTEM)

    def get(self, path, cached=False):
        return self.request("GET", path)[1]

    def request(self, method, path, payload=None):
        body = self.resources.get(path)
        if isinstance(body, list):
            status, body = body.pop(0)
            return Answer(status), body
        if isinstance(body, int) or body is None:
            raise RedfishError(f"GET {path} failed", body or 404, {"error": {"message": "Error finding storage"}})
        return Answer(200), body

    def post(self, path, payload):
        self.sent.append(("POST", path, payload))
        return self.post_answer, {}

    def patch(self, path, payload, etag=None):
        self.sent.append(("PATCH", path, payload))


def drive(actions=None, **extra):
    return {"@odata.id": DRIVE, "Id": "0", "Name": "Drive 0", "Model": "C123", "SerialNumber": "S1",
            "CapacityBytes": 10, "Protocol": "NVMe", **({"Actions": actions} if actions is not None else {}), **extra}


def storage_bmc(drive_body, **kwargs):
    return FakeBMC({SYSTEM: {"@odata.id": SYSTEM, "Storage": {"@odata.id": f"{SYSTEM}/Storage"}},
                    f"{SYSTEM}/Storage": {"Members": [{"@odata.id": f"{SYSTEM}/Storage/RAID"}]},
                    f"{SYSTEM}/Storage/RAID": {"Drives": [{"@odata.id": DRIVE}]},
                    DRIVE: drive_body, **kwargs.pop("extra", {})}, **kwargs)


# -- SecureErase request building ---------------------------------------------------------------------------

TARGET = f"{DRIVE}/Actions/Drive.SecureErase"


@pytest.mark.parametrize("actions, expected", [
    (None, None),
    ({}, None),
    ({"#Drive.SecureErase": {"target": TARGET}}, (TARGET, {})),
    ({"#Drive.SecureErase": {}}, (TARGET, {})),  # no target given: the schema's default action URI
    ({"#Drive.SecureErase": {"target": TARGET,
                             "SanitizationType@Redfish.AllowableValues": ["Overwrite", "CryptographicErase"]}},
     (TARGET, {"SanitizationType": "CryptographicErase"})),
    ({"#Drive.SecureErase": {"target": TARGET, "SanitizationType@Redfish.AllowableValues": ["BlockErase"]}},
     (TARGET, {"SanitizationType": "BlockErase"})),
    ({"#Drive.SecureErase": {"target": TARGET, "SanitizationType@Redfish.AllowableValues": ["VendorWipe"]}},
     (TARGET, {"SanitizationType": "VendorWipe"})),
])
def test_erase_request(actions, expected):
    assert redfish_drives.erase_request(drive(actions)) == expected


@pytest.mark.parametrize("resources, reason", [
    ({SYSTEM: {"@odata.id": SYSTEM}}, "the BMC lists no Storage resource for the system"),
    # What the lab's sushy-tools answers: Storage advertised, the collection a 500.
    ({SYSTEM: {"@odata.id": SYSTEM, "Storage": {"@odata.id": f"{SYSTEM}/Storage"}}, f"{SYSTEM}/Storage": 500},
     "the BMC's Storage collection cannot be read (500: Error finding storage)"),
    ({SYSTEM: {"@odata.id": SYSTEM, "Storage": {"@odata.id": f"{SYSTEM}/Storage"}},
      f"{SYSTEM}/Storage": {"Members": [{"@odata.id": f"{SYSTEM}/Storage/1"}]}, f"{SYSTEM}/Storage/1": {}},
     "the BMC lists no drive under the system's Storage"),
])
def test_no_drives_say_why_and_erase_nothing(resources, reason):
    bmc = FakeBMC(resources)
    outcome = redfish_drives.secure_erase(bmc, check_mode=False, timeout=1)
    assert outcome == {"changed": False, "drives": [], "erased": [], "unerasable": [], "no_drives_reason": reason}
    assert bmc.sent == []


def test_erase_posts_the_action_and_follows_the_task_monitor():
    monitor = "/redfish/v1/TaskService/Tasks/7/Monitor"
    actions = {"#Drive.SecureErase": {"target": TARGET,
                                      "SanitizationType@Redfish.AllowableValues": ["CryptographicErase"]}}
    bmc = storage_bmc(drive(actions), post_answer=Answer(202, monitor),
                      extra={monitor: [(202, {"TaskState": "Running"}), (200, {"TaskState": "Completed"})]})
    outcome = redfish_drives.secure_erase(bmc, check_mode=False, timeout=60, poll=0)
    assert bmc.sent == [("POST", TARGET, {"SanitizationType": "CryptographicErase"})]
    assert outcome["changed"] and [d["uri"] for d in outcome["erased"]] == [DRIVE]
    assert outcome["erased"][0]["sanitization"] == "CryptographicErase" and outcome["unerasable"] == []


def test_a_failed_erase_task_and_a_drive_without_the_action_are_unerasable():
    monitor = "/redfish/v1/TaskService/Tasks/8/Monitor"
    bmc = storage_bmc(drive({"#Drive.SecureErase": {"target": TARGET}}), post_answer=Answer(202, monitor),
                      extra={monitor: [(200, {"TaskState": "Exception", "Messages": [{"Message": "locked"}]})]})
    failed = redfish_drives.secure_erase(bmc, check_mode=False, timeout=60, poll=0)
    assert failed["unerasable"][0]["reason"] == "the erase task ended Exception: locked" and not failed["erased"]

    plain = storage_bmc(drive())  # what sushy-tools' Drive template looks like: no Actions
    outcome = redfish_drives.secure_erase(plain, check_mode=False, timeout=1)
    assert plain.sent == [] and not outcome["changed"]
    assert outcome["unerasable"][0]["reason"] == "the BMC offers no Drive.SecureErase for it"


def test_check_mode_erases_nothing_but_says_what_would_be():
    bmc = storage_bmc(drive({"#Drive.SecureErase": {"target": TARGET}}))
    outcome = redfish_drives.secure_erase(bmc, check_mode=True, timeout=1)
    assert bmc.sent == [] and outcome["changed"] and len(outcome["erased"]) == 1


# -- virtual media and the boot override ---------------------------------------------------------------------

def media_bmc(boot):
    cd, floppy, usb = f"{SYSTEM}/VirtualMedia/Cd", f"{SYSTEM}/VirtualMedia/Floppy", "/redfish/v1/Managers/1/VM/Usb"
    return FakeBMC({
        SYSTEM: {"@odata.id": SYSTEM, "VirtualMedia": {"@odata.id": f"{SYSTEM}/VirtualMedia"}, "Boot": boot},
        f"{SYSTEM}/VirtualMedia": {"Members": [{"@odata.id": cd}, {"@odata.id": floppy}]},
        "/redfish/v1/Managers": {"Members": [{"@odata.id": "/redfish/v1/Managers/1"}]},
        "/redfish/v1/Managers/1/VirtualMedia": {"Members": [{"@odata.id": usb}, {"@odata.id": cd}]},
        cd: {"@odata.id": cd, "Inserted": True, "Image": "http://images/t.iso",
             "Actions": {"#VirtualMedia.EjectMedia": {"target": f"{cd}/Actions/VirtualMedia.EjectMedia"}}},
        floppy: {"@odata.id": floppy, "Inserted": False, "Image": ""},
        usb: {"@odata.id": usb, "Inserted": True, "Image": "http://images/t.img"},  # no EjectMedia: PATCH
    })


def test_release_ejects_every_medium_and_clears_the_override():
    bmc = media_bmc({"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Cd"})
    outcome = redfish_release.release(bmc, "Pxe", check_mode=False)
    assert outcome["changed"] and outcome["boot_changed"]
    assert [e["media"] for e in outcome["ejected"]] == [f"{SYSTEM}/VirtualMedia/Cd", "/redfish/v1/Managers/1/VM/Usb"]
    assert bmc.sent == [
        ("POST", f"{SYSTEM}/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia", {}),
        ("PATCH", "/redfish/v1/Managers/1/VM/Usb", {"Image": None, "Inserted": False}),
        ("PATCH", SYSTEM, {"Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}}),
    ]
    checked = media_bmc({"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Cd"})
    assert redfish_release.release(checked, "Pxe", check_mode=True)["changed"] and checked.sent == []


SUSHY = ["Pxe", "Cd", "Hdd"]


@pytest.mark.parametrize("boot, fallback, expected", [
    ({"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "Cd"}, "Pxe", None),
    ({"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "None"}, "Pxe", None),
    ({}, "Pxe", None),
    ({"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Cd",
      "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Cd"]}, "Pxe",
     {"Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}}),
    # sushy-tools: always Continuous, no target None: parked on the fallback, which is then "cleared".
    ({"BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideTarget": "Cd",
      "BootSourceOverrideTarget@Redfish.AllowableValues": SUSHY}, "Pxe", {"Boot": {"BootSourceOverrideTarget": "Pxe"}}),
    ({"BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideTarget": "Pxe",
      "BootSourceOverrideTarget@Redfish.AllowableValues": SUSHY}, "Pxe", None),
])
def test_boot_plan(boot, fallback, expected):
    assert redfish_release.boot_plan(boot, fallback) == expected


def test_boot_plan_fails_when_the_fallback_is_not_offered():
    with pytest.raises(RedfishError, match="neither disable the boot override nor set Usb"):
        redfish_release.boot_plan({"BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideTarget": "Cd",
                                   "BootSourceOverrideTarget@Redfish.AllowableValues": SUSHY}, "Usb")


# -- the role's summary and journal entry -------------------------------------------------------------------

def test_summary_and_journal_entry():
    filters = load_filters()
    release = {"ejected": [{"media": f"{SYSTEM}/VirtualMedia/Cd", "image": "http://images/t.iso"}],
               "boot_changed": True, "boot": {"target": "Pxe", "enabled": "Continuous"}}
    graceful = {"changed": True, "power_state_before": "On", "power_state": "Off"}
    none = {"changed": False, "drives": [], "erased": [], "unerasable": [], "no_drives_reason": "no Storage"}
    summary = filters.node_wipe_summary(release, graceful, {}, none, "gpu-img-1", True, True)
    assert summary == {"warning": True, "lines": [
        "virtual media ejected: Cd (http://images/t.iso)", "boot override cleared (now Pxe, Continuous)",
        "power: On -> Off (GracefulShutdown)", "drives: no erasable drives (no Storage)",
        "image assignment cleared: gpu-img-1"]}
    entry = filters.node_wipe_journal_entry(summary, "42", "10.0.0.1", True)
    assert entry["device_id"] == 42 and entry["kind"] == "warning"
    assert entry["comments"].startswith("Wiped by gpucloud for the free pool (role node_wipe, BMC 10.0.0.1):\n- ")

    erased = {"drives": [{"name": "d0"}], "erased": [{"name": "d0", "sanitization": "CryptographicErase"}],
              "unerasable": []}
    ok = filters.node_wipe_summary({}, {}, {"changed": True, "power_state_before": "On"}, erased, "", True, False)
    assert ok["lines"][2:] == ["power: On -> Off (ForceOff, no graceful shutdown in time)",
                               "drives: 1 erased (CryptographicErase): d0"] and not ok["warning"]
    assert filters.node_wipe_journal_entry(ok, 1, "b", True)["kind"] == "success"


# -- the role against the lab's fleet ----------------------------------------------------------------------

INVENTORY = "inventory/fleet.gpucloud_netbox.yml"
PLAYBOOK = "playbooks/node_wipe.yml"
IMAGE = {"schema_version": 1, "name": "gpu-wipetest", "version": "1.0",
         "build_key": hashlib.sha256(b"wipetest").hexdigest(), "base": {"distribution": "debian"},
         "kernel": {"release": "6.1.0-35-amd64"}, "built_at": "2026-11-23T02:40:00Z",
         "artifacts": {"raw": {"file": "gpu-wipetest-1.0.raw", "sha256": "0" * 64, "bytes": 1}}}


class BMC:
    def __init__(self, address, lab_env):
        self.base = f"https://{address}:{bmc_emulator.port()}"
        self.session = requests.Session()
        self.session.auth = (bmc_emulator.USERNAME, lab_env[bmc_emulator.PASSWORD_ENV])
        self.session.verify = lab_env[bmc_emulator.CA_ENV]
        self.session.trust_env = False
        self.path = self.session.get(f"{self.base}/redfish/v1/Systems", timeout=10).json()["Members"][0]["@odata.id"]

    def system(self):
        return self.session.get(self.base + self.path, timeout=10).json()

    def power_on(self):
        if self.system()["PowerState"] != "On":
            self.session.post(f"{self.base}{self.path}/Actions/ComputerSystem.Reset", json={"ResetType": "On"},
                              timeout=10).raise_for_status()


@pytest.fixture
def deployed(fleet, lab_env, nb, restore_fleet_after, tmp_path):
    """The last two fleet servers as a tenant leaves them: on, an image assigned in NetBox; powered on again
    afterwards, as the lab starts them. (Their libvirt domains have no disk or CD, so the emulator accepts no boot
    target but Pxe and no medium: media and boot override are covered by the Molecule scenario's fake-driver BMC.)"""
    nodes = [{"name": s.name, "bmc": BMC(s.bmc_ip.split("/")[0], lab_env)} for s in fleet.servers[-2:]]
    names = [n["name"] for n in nodes]
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"gpucloud.infra.netbox_image": {"manifest": IMAGE, "devices": names}}]}]
    assign = tmp_path / "assign.yml"
    assign.write_text(json.dumps(play))
    proc = ansible_playbook(str(assign))
    assert proc.returncode == 0, proc.stdout[-3000:]
    for node in nodes:
        node["bmc"].power_on()
    yield nodes
    for node in nodes:
        node["bmc"].power_on()


def platform(nb, name):
    return (nb.list("dcim/devices", name=name)[0].get("platform") or {}).get("slug")


def journal(nb, name):
    device = nb.list("dcim/devices", name=name)[0]
    return nb.list("extras/journal-entries", assigned_object_type="dcim.device", assigned_object_id=device["id"])


@pytest.mark.netbox
def test_check_then_wipe_then_rewipe(deployed, nb, lab_env):
    password = lab_env[bmc_emulator.PASSWORD_ENV]
    limit = ",".join(n["name"] for n in deployed)
    before = {n["name"]: {j["id"] for j in journal(nb, n["name"])} for n in deployed}

    def play(*args):
        proc = ansible_playbook(PLAYBOOK, "-i", INVENTORY, "--limit", limit, *args)
        assert password not in proc.stdout + proc.stderr
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc

    checked = play("--check", "--diff")
    assert all(recaps(checked)[n["name"]]["changed"] >= 1 for n in deployed), checked.stdout[-3000:]
    for node in deployed:  # check mode sent nothing and wrote nothing
        system = node["bmc"].system()
        assert (system["PowerState"], system["Boot"]["BootSourceOverrideTarget"]) == ("On", "Pxe")
        assert platform(nb, node["name"]) == "gpu-wipetest-1-0"
        assert {j["id"] for j in journal(nb, node["name"])} == before[node["name"]]

    wiped = play()
    for node in deployed:
        system = node["bmc"].system()
        assert (system["PowerState"], system["Boot"]["BootSourceOverrideTarget"]) == ("Off", "Pxe")
        assert platform(nb, node["name"]) is None
        new = [j for j in journal(nb, node["name"]) if j["id"] not in before[node["name"]]]
        assert len(new) == 1, new
        text = new[0]["comments"]
        assert text.startswith("Wiped by gpucloud for the free pool") and password not in text
        assert "no erasable drives (the BMC's Storage collection cannot be read (500" in text
        assert "image assignment cleared: gpu-wipetest-1-0" in text and "power: On -> Off" in text
        assert new[0]["kind"]["value"] == "warning"
    assert wiped.stdout.count("no erasable drives") >= len(deployed)

    for args in ((), ("--check",)):
        again = play(*args)
        assert all(recaps(again)[n["name"]]["changed"] == 0 for n in deployed), (args, again.stdout[-3000:])
        assert again.stdout.count("already wiped, left alone") == len(deployed)
    for node in deployed:
        assert len(journal(nb, node["name"])) == len(before[node["name"]]) + 1


@pytest.mark.netbox
def test_bad_input_fails_naming_the_variable(fleet, lab_env):
    node = fleet.servers[-1].name
    proc = ansible_playbook(PLAYBOOK, "-i", INVENTORY, "--limit", node, "-e", "node_wipe_graceful_timeout=-5",
                            "-e", "node_wipe_boot_fallback=Floppy")
    assert proc.returncode != 0
    assert "node_wipe_boot_fallback" in proc.stdout and "Floppy" in proc.stdout, proc.stdout[-3000:]
