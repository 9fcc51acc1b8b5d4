"""bios_apply against a recorded-style Dell iDRAC: pending values, apply times, the one-job queue, reboot+verify.

The lab's sushy emulator applies PATCHes at once, has no apply times and no job queue, so these
behaviours are exercised on payloads shaped like iDRAC9's (sources: tests/fixtures/redfish/README.md).
"""

import copy

import pytest

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import bios_apply, registry_cache
from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish, RedfishError

SYSTEM = "/redfish/v1/Systems/System.Embedded.1"
BIOS = f"{SYSTEM}/Bios"
SETTINGS = f"{SYSTEM}/Bios/Settings"
JOBS = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs?$expand=*($levels=1)"
REGISTRY_FILE = "/redfish/v1/Registries/BiosAttributeRegistry"
REGISTRY = "/redfish/v1/Systems/System.Embedded.1/Bios/BiosRegistry"


class Response:
    def __init__(self, headers=None):
        self.headers = headers or {}


class FakeIdrac(Redfish):
    """Serves payloads from a dict and records writes; models iDRAC's pending settings and job queue."""

    def __init__(self, payloads):
        super().__init__("idrac.example", "root", "secret", verify=False)
        self.payloads = payloads
        self.calls = []

    def request(self, method, path, payload=None, headers=None):
        self.calls.append((method, path, payload))
        if method == "GET":
            if path not in self.payloads:
                raise RedfishError(f"BMC idrac.example: GET {path} failed (404)", 404)
            return Response(), copy.deepcopy(self.payloads[path])
        if method == "PATCH" and path == SETTINGS:
            if self.open_job():
                body = {"error": {"@Message.ExtendedInfo": [{"MessageId": "IDRAC.2.8.SYS011"}]}}
                raise RedfishError("BMC idrac.example: PATCH failed (400): Pending configuration values are already "
                                   "committed", 400, body)
            self.payloads[SETTINGS]["Attributes"].update(payload["Attributes"])
            self.payloads[JOBS]["Members"].append({"Id": "JID_100", "JobType": "BIOSConfiguration",
                                                   "JobState": "Scheduled"})
            return Response({"Location": "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/JID_100"}), {}
        if method == "POST" and path.endswith("ComputerSystem.Reset"):
            self.payloads[BIOS]["Attributes"].update(self.payloads[SETTINGS]["Attributes"])
            self.payloads[JOBS]["Members"] = []
            return Response(), {}
        raise AssertionError(f"unexpected {method} {path}")

    def open_job(self):
        return any(j["JobState"] == "Scheduled" for j in self.payloads[JOBS]["Members"])


@pytest.fixture(autouse=True)
def private_registry_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_cache, "CACHE_DIR", tmp_path / "registries")


@pytest.fixture
def idrac():
    attributes = {"SysProfile": "PerfPerWattOptimizedDapc", "NodeInterleave": "Disabled", "ProcVirtualization":
                  "Enabled", "PcieAspmL1": "Enabled", "SriovGlobalEnable": "Disabled", "LogicalProc": "Enabled"}
    payloads = {
        "/redfish/v1/Systems": {"Members": [{"@odata.id": SYSTEM}]},
        SYSTEM: {"@odata.id": SYSTEM, "Manufacturer": "Dell Inc.", "Model": "PowerEdge XE9680", "PowerState": "On",
                 "Bios": {"@odata.id": BIOS}, "Actions": {"#ComputerSystem.Reset": {
                     "target": f"{SYSTEM}/Actions/ComputerSystem.Reset",
                     "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart", "GracefulShutdown"]}}},
        BIOS: {"@odata.id": BIOS, "AttributeRegistry": "BiosAttributeRegistry.v1_0_3", "Attributes": attributes,
               "@Redfish.Settings": {"SettingsObject": {"@odata.id": SETTINGS},
                                     "SupportedApplyTimes": ["Immediate", "OnReset", "AtMaintenanceWindowStart",
                                                             "InMaintenanceWindowOnReset"]}},
        SETTINGS: {"@odata.id": SETTINGS, "Attributes": {}},
        JOBS: {"Members": []},
        "/redfish/v1/Registries": {"Members": [{"@odata.id": "/redfish/v1/Registries/Messages"},
                                               {"@odata.id": REGISTRY_FILE}]},
        REGISTRY_FILE: {"Id": "BiosAttributeRegistry.v1_0_3", "Location": [{"Uri": REGISTRY}]},
        REGISTRY: {"RegistryEntries": {"Attributes": [
            {"AttributeName": name, "Type": "Enumeration", "ReadOnly": False,
             "Value": [{"ValueName": v} for v in values]}
            for name, values in {"SysProfile": ["PerfPerWattOptimizedDapc", "PerfOptimized", "Custom"],
                                 "NodeInterleave": ["Enabled", "Disabled"],
                                 "ProcVirtualization": ["Enabled", "Disabled"],
                                 "PcieAspmL1": ["Enabled", "Disabled"], "SriovGlobalEnable": ["Enabled", "Disabled"],
                                 "LogicalProc": ["Enabled", "Disabled"]}.items()]}},
    }
    return FakeIdrac(payloads)


REQUEST = {"profile": "gpu_performance", "vendor": "auto", "apply_time": "OnReset", "reboot": "never"}


def writes(client):
    return [c for c in client.calls if c[0] != "GET"]


def test_check_mode_reports_the_plan_and_writes_nothing(idrac):
    result = bios_apply.run(idrac, REQUEST, check_mode=True)
    assert result["vendor"] == "dell" and result["changed"]
    assert result["changes"] == {"SysProfile": "PerfOptimized", "PcieAspmL1": "Disabled",
                                 "ProcVirtualization": "Disabled"}
    assert writes(idrac) == []


def test_on_reset_patches_once_then_the_value_is_pending_not_changed(idrac):
    first = bios_apply.run(idrac, REQUEST, check_mode=False)
    (method, path, payload), = writes(idrac)
    assert (method, path) == ("PATCH", SETTINGS)
    assert payload["@Redfish.SettingsApplyTime"] == {"ApplyTime": "OnReset"}
    assert first["changed"] and first["job"] == {"id": "JID_100", "state": "Scheduled"}
    assert first["reboot_required"] and not first["verified"]
    second = bios_apply.run(idrac, REQUEST, check_mode=False)
    assert not second["changed"] and second["pending"]
    assert set(second["pending_attributes"]) == {"SysProfile", "PcieAspmL1", "ProcVirtualization"}
    assert len(writes(idrac)) == 1


def test_new_changes_while_a_job_is_queued_fail_clearly(idrac):
    bios_apply.run(idrac, REQUEST, check_mode=False)
    with pytest.raises(bios_apply.BiosError, match="JID_100 is already Scheduled") as failure:
        bios_apply.run(idrac, REQUEST | {"attributes": {"LogicalProc": "Disabled"}}, check_mode=False)
    assert failure.value.details["job"]["id"] == "JID_100"


def test_reboot_when_required_resets_and_verifies(idrac, monkeypatch):
    monkeypatch.setattr(Redfish, "wait_powered_on", lambda self, timeout, poll=2.0: self.system())
    result = bios_apply.run(idrac, REQUEST | {"reboot": "when_required"}, check_mode=False)
    assert result["rebooted"] and result["verified"] and not result["pending"]
    assert [c[0] for c in writes(idrac)] == ["PATCH", "POST"]
    assert writes(idrac)[1][2] == {"ResetType": "ForceRestart"}
    again = bios_apply.run(idrac, REQUEST | {"reboot": "when_required"}, check_mode=False)
    assert not again["changed"] and not again["rebooted"] and len(writes(idrac)) == 2


def test_maintenance_window_and_unsupported_apply_times(idrac):
    window = {"start": "2026-12-01T02:00:00Z", "duration": 7200}
    bios_apply.run(idrac, REQUEST | {"apply_time": "AtMaintenanceWindowStart", "maintenance_window": window},
                   check_mode=False)
    payload = writes(idrac)[0][2]["@Redfish.SettingsApplyTime"]
    assert payload == {"ApplyTime": "AtMaintenanceWindowStart", "MaintenanceWindowStartTime": window["start"],
                       "MaintenanceWindowDurationInSeconds": 7200}
    idrac.payloads[BIOS]["@Redfish.Settings"]["SupportedApplyTimes"] = ["OnReset"]
    idrac.payloads[SETTINGS]["Attributes"].clear()
    idrac.payloads[JOBS]["Members"].clear()
    with pytest.raises(bios_apply.BiosError, match="Immediate is not supported"):
        bios_apply.run(idrac, REQUEST | {"apply_time": "Immediate", "attributes": {"LogicalProc": "Disabled"}},
                       check_mode=False)


def test_registries_are_fetched_once_per_model_and_bios_version(idrac):
    bios_apply.run(idrac, REQUEST, check_mode=True)
    bios_apply.run(idrac, REQUEST, check_mode=True)
    fetched = [path for method, path, _ in idrac.calls if path == REGISTRY]
    assert fetched == [REGISTRY]


def test_invalid_values_fail_before_anything_is_sent(idrac):
    with pytest.raises(bios_apply.BiosError, match=r"SysProfile='Turbo': value not allowed \(allowed: "):
        bios_apply.run(idrac, REQUEST | {"overrides": {"SysProfile": "Turbo", "Bogus": "x"}}, check_mode=False)
    assert writes(idrac) == []
