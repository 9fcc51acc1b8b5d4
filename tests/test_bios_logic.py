"""BIOS intent logic on recorded-style payloads: typed comparison, registry validation, pending, profiles."""

import pytest

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import bios, bios_profiles

REGISTRY = {"RegistryEntries": {"Attributes": [
    {"AttributeName": "SysProfile", "Type": "Enumeration", "ReadOnly": False,
     "Value": [{"ValueName": "PerfOptimized"}, {"ValueName": "PerfPerWattOptimizedDapc"}, {"ValueName": "Custom"}]},
    {"AttributeName": "ProcCStates", "Type": "Enumeration", "ReadOnly": True,
     "Value": [{"ValueName": "Enabled"}, {"ValueName": "Disabled"}]},
    {"AttributeName": "NumaNodes", "Type": "Integer", "ReadOnly": False, "LowerBound": 1, "UpperBound": 8},
    {"AttributeName": "QuietBoot", "Type": "Boolean", "ReadOnly": False},
    {"AttributeName": "AssetTag", "Type": "String", "ReadOnly": False, "MaxLength": 8},
    {"AttributeName": "SysPassword", "Type": "Password", "ReadOnly": False},
]}}


@pytest.mark.parametrize(("current", "desired", "equal"), [
    ("True", True, True), ("true", True, True), ("False", True, False), ("12", 12, True), (12, "12", True),
    ("Enabled", "Enabled", True), ("Enabled", "Disabled", False), (None, "x", False), ("abc", 3, False),
])
def test_values_compare_by_meaning(current, desired, equal):
    assert bios.same(current, desired) is equal


def test_every_bad_attribute_is_reported_with_allowed_values():
    errors = bios.validate({"SysProfil": "PerfOptimized", "SysProfile": "Fast", "ProcCStates": "Disabled",
                            "NumaNodes": 99, "QuietBoot": "maybe", "AssetTag": "far-too-long", "SysPassword": "x",
                            "Nested": {"a": 1}}, REGISTRY)
    by_name = {e["attribute"]: e for e in errors}
    assert set(by_name) == {"SysProfil", "SysProfile", "ProcCStates", "NumaNodes", "QuietBoot", "AssetTag",
                            "SysPassword", "Nested"}
    assert by_name["SysProfil"]["reason"] == "unknown attribute" and by_name["SysProfil"]["allowed"][0] == "SysProfile"
    assert by_name["SysProfile"]["allowed"] == ["PerfOptimized", "PerfPerWattOptimizedDapc", "Custom"]
    assert by_name["ProcCStates"]["reason"] == "read-only attribute"
    assert by_name["NumaNodes"]["allowed"] == ["1..8"]
    assert "boolean" in by_name["QuietBoot"]["reason"]
    text = bios.describe(errors)
    assert "SysProfile='Fast': value not allowed (allowed: PerfOptimized, PerfPerWattOptimizedDapc, Custom)" in text


def test_without_a_registry_only_shapes_are_checked():
    assert bios.validate({"Anything": "goes"}, None) == []
    assert bios.validate({"Bad": [1]}, None)[0]["reason"].startswith("expected a single value")


def test_values_are_sent_with_the_registry_type():
    entries = bios.registry_entries(REGISTRY)
    assert bios.typed("4", entries["NumaNodes"]) == 4
    assert bios.typed("True", entries["QuietBoot"]) is True
    assert bios.typed(3, entries["AssetTag"]) == "3"
    assert bios.typed(3, None) == 3


def test_a_value_already_pending_is_not_a_change():
    current = {"SysProfile": "PerfPerWattOptimizedDapc", "QuietBoot": "True", "NumaNodes": 2}
    settings = {"Attributes": {"SysProfile": "PerfOptimized", "QuietBoot": "True"}}
    pending = bios.pending_values(current, settings)
    assert pending == {"SysProfile": "PerfOptimized"}  # the settings object echoes unchanged values too
    result = bios.plan({"SysProfile": "PerfOptimized", "QuietBoot": False, "NumaNodes": 2}, current, pending)
    assert result.pending == {"SysProfile": "PerfOptimized"}
    assert result.changes == {"QuietBoot": False}
    assert result.before == {"QuietBoot": "True", "SysProfile": "PerfPerWattOptimizedDapc"}
    assert bios.plan({"NumaNodes": "2"}, current, pending).changed is False


def test_a_different_pending_value_is_overwritten():
    current = {"SysProfile": "Custom"}
    result = bios.plan({"SysProfile": "PerfOptimized"}, current, {"SysProfile": "PerfPerWattOptimizedDapc"})
    assert result.changes == {"SysProfile": "PerfOptimized"} and not result.pending


@pytest.mark.parametrize(("manufacturer", "model", "vendor"), [
    ("Dell Inc.", "PowerEdge XE9680", "dell"), ("HPE", "ProLiant XL675d Gen10 Plus", "hpe"),
    ("Hewlett Packard Enterprise", "", "hpe"), ("Supermicro", "SYS-821GE-TNHR", "supermicro"),
    ("Lenovo", "ThinkSystem SR675 V3", "lenovo"), ("Sushy Emulator", None, "generic"), (None, "PowerEdge R760", "dell"),
])
def test_vendor_detection(manufacturer, model, vendor):
    assert bios_profiles.detect_vendor({"Manufacturer": manufacturer, "Model": model}) == vendor


def test_profile_resolves_per_vendor_and_features():
    profile = bios_profiles.load("gpu_performance")
    dell, unsupported = bios_profiles.resolve(profile, "dell", [])
    assert dell["SysProfile"] == "PerfOptimized" and dell["ProcVirtualization"] == "Disabled"
    assert "SriovGlobalEnable" not in dell and unsupported == []
    with_sriov, _ = bios_profiles.resolve(profile, "dell", ["sriov", "iommu"])
    assert with_sriov["SriovGlobalEnable"] == "Enabled" and with_sriov["ProcVirtualization"] == "Enabled"
    generic, unsupported = bios_profiles.resolve(profile, "generic", [])
    assert generic == {"ProcTurboMode": "Enabled"} and "cstates_disabled" in unsupported
    for vendor in bios_profiles.VENDORS:
        assert isinstance(bios_profiles.resolve(profile, vendor, ["sriov"])[0], dict)


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(bios_profiles.ProfileError, match="gpu_performance"):
        bios_profiles.load("turbo_everything")
