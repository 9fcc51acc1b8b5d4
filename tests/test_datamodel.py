"""The data model bootstrap against a real, freshly migrated NetBox: check, apply, re-apply."""

import json

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils.datamodel import CUSTOM_FIELDS, validate_model
from conftest import ansible_playbook, recap

PLAYBOOK = "playbooks/netbox_bootstrap.yml"


def test_check_apply_reapply(empty_netbox, nb):
    checked = ansible_playbook(PLAYBOOK, "--check", "--diff")
    assert recap(checked)["changed"] == 1, checked.stdout
    assert nb.get("extras/custom-fields", limit=1)["count"] == 0, "check mode must not write"

    applied = ansible_playbook(PLAYBOOK)
    assert recap(applied) == {**recap(applied), "changed": 1, "failed": 0}
    names = {cf["name"] for cf in nb.list("extras/custom-fields")}
    assert {cf["name"] for cf in CUSTOM_FIELDS} <= names
    roles = {r["slug"] for r in nb.list("dcim/device-roles")}
    assert {"gpu-server", "leaf", "spine", "ib-switch", "storage"} <= roles
    types = {t["slug"]: t for t in nb.list("dcim/device-types")}
    for slug in ("hgx-h100-8gpu", "hgx-h200-8gpu", "hgx-b200-8gpu", "mi300x-8gpu", "gaudi3-8oam"):
        assert types[slug]["interface_template_count"] == 4, slug
    assert types["mi300x-8gpu"]["custom_fields"]["gpu_vendor"]["value"] == "AMD"
    pool = nb.list("ipam/vlan-groups", slug="tenant-fabric")[0]
    assert pool["custom_fields"]["pool_l3vni"] == "50001-54000"

    again = ansible_playbook(PLAYBOOK, "--diff")
    assert recap(again)["changed"] == 0, again.stdout
    checked_again = ansible_playbook(PLAYBOOK, "--check")
    assert recap(checked_again)["changed"] == 0


def test_drift_is_corrected_and_shown_in_diff(restore_fleet_after, nb):
    role = nb.list("dcim/device-roles", slug="leaf")[0]
    nb.update("dcim/device-roles", [{"id": role["id"], "color": "ff0000"}])
    checked = ansible_playbook(PLAYBOOK, "--check", "--diff")
    assert recap(checked)["changed"] == 1
    assert "ff0000" in checked.stdout and "2196f3" in checked.stdout
    assert nb.list("dcim/device-roles", slug="leaf")[0]["color"] == "ff0000"
    assert recap(ansible_playbook(PLAYBOOK))["changed"] == 1
    assert nb.list("dcim/device-roles", slug="leaf")[0]["color"] == "2196f3"


BAD_MODEL = {
    "manufacturers": [{"name": "NVIDIA", "slug": "nvidia"}],
    "device_types": [
        {"model": "X", "slug": "Bad Slug", "manufacturer": "nvidia"},
        {"model": "Y", "slug": "y", "manufacturer": "acme", "gpu": {"vendor": "Nvidia", "count": 0, "memory_gb": 80}},
    ],
    "network_pools": [{"name": "p", "slug": "p", "vlan_range": [0, 5000], "l3vni_range": "9-1",
                       "l2vni_range": "100-200", "ib_pkey_range": "0x0000-0x9000", "evpn_asn": 65000,
                       "tenant_prefix_pool": "10.300.0.0/16"}],
}


def test_validation_names_every_bad_field():
    errors = validate_model(BAD_MODEL)
    expected = ["device_types[0].slug", "device_types[1] (y).manufacturer", "device_types[1] (y).gpu.vendor",
                "device_types[1] (y).gpu.count", "network_pools[0].vlan_range", "network_pools[0].l3vni_range",
                "network_pools[0].ib_pkey_range", "network_pools[0].tenant_prefix_pool"]
    for field in expected:
        assert any(e.startswith(field) for e in errors), (field, errors)
    assert len(errors) == len(expected), errors


def test_bad_model_fails_before_touching_netbox(tmp_path, lab_env, fleet, nb):
    before = nb.get("core/object-changes", limit=1)["count"]
    extra = tmp_path / "bad.json"
    extra.write_text(json.dumps({"netbox_datamodel_device_types": BAD_MODEL["device_types"],
                                 "netbox_datamodel_network_pools": BAD_MODEL["network_pools"]}))
    proc = ansible_playbook(PLAYBOOK, "-e", f"@{extra}")
    assert proc.returncode != 0
    assert "error(s)" in proc.stdout and "gpu.vendor: expected one of ['NVIDIA', 'AMD', 'Intel']" in proc.stdout
    assert "l3vni_range" in proc.stdout
    assert nb.get("core/object-changes", limit=1)["count"] == before


@pytest.mark.parametrize("missing", ["NETBOX_URL", "NETBOX_TOKEN"])
def test_preflight_names_missing_connection_settings(missing):
    proc = ansible_playbook(PLAYBOOK, env={missing: ""})
    assert proc.returncode != 0
    assert "NETBOX_URL/NETBOX_TOKEN are not set" in proc.stdout
