"""The comparison at the heart of every idempotent NetBox write: data-driven, no services."""

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_reconcile import (
    plan_collection,
    same,
    validate,
)

SAME = [
    ("plain string", "gpu-server", "gpu-server", True),
    ("string differs", "gpu-server", "leaf", False),
    ("choice field by value", "active", {"value": "active", "label": "Active"}, True),
    ("related object by slug", {"slug": "nvidia"}, {"id": 1, "slug": "nvidia", "name": "NVIDIA"}, True),
    ("related object differs", {"slug": "amd"}, {"id": 1, "slug": "nvidia"}, False),
    ("related object missing", {"slug": "amd"}, None, False),
    ("custom fields subset", {"gpu_count": 8}, {"gpu_count": 8, "gpu_model": "H100"}, True),
    ("custom field differs", {"gpu_count": 8}, {"gpu_count": 4}, False),
    ("int vs float", 8, 8.0, True),
    ("float vs decimal string", 24.0, "24.00", True),
    ("numeric-looking strings compare as text", "0100", "100", False),
    ("list order ignored", ["dcim.device", "dcim.devicetype"], ["dcim.devicetype", "dcim.device"], True),
    ("list length differs", ["dcim.device"], ["dcim.device", "dcim.devicetype"], False),
    ("nested lists", [[100, 3999]], [[100, 3999]], True),
    ("bool is not int", True, 1, False),
    ("none vs empty", None, "", False),
]


@pytest.mark.parametrize(("want", "have", "expected"), [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_same(want, have, expected):
    assert same(want, have) is expected


def test_plan_splits_create_update_unchanged():
    existing = [{"id": 1, "slug": "a", "color": "ffffff"}, {"id": 2, "slug": "b", "color": "000000"}]
    spec = {"endpoint": "dcim/device-roles", "key": ["slug"], "objects": [
        {"slug": "a", "color": "ffffff"}, {"slug": "b", "color": "111111"}, {"slug": "c", "color": "222222"}]}
    plan = plan_collection(existing, spec)
    assert plan["create"] == [{"slug": "c", "color": "222222"}]
    assert plan["update"] == [{"id": 2, "color": "111111"}]
    assert plan["unchanged"] == 1
    assert plan["diff"]["before"] == [{"b": {"color": "000000"}}]


def test_validate_reports_every_error_at_once():
    errors = validate([
        {"endpoint": "roles", "key": ["slug"], "objects": []},
        {"endpoint": "dcim/sites", "key": [], "objects": []},
        {"endpoint": "dcim/sites", "key": ["slug"], "objects": [{"slug": "a"}, {"slug": "a"}, {"name": "x"}]},
    ])
    assert len(errors) == 4, errors
    assert any("collections[0].endpoint" in e for e in errors)
    assert any("collections[1].key" in e for e in errors)
    assert any("duplicate key" in e for e in errors)
    assert any("missing key" in e for e in errors)
