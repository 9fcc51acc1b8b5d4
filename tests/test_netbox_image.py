"""Golden images in NetBox (gpucloud.infra.netbox_image, netbox_image_info) against the lab NetBox and fleet:
record, assign, re-run, check mode, what a device and the inventory show, refusal to remove an image in use."""

import copy
import json

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_image
from conftest import ansible_inventory, ansible_playbook

pytestmark = pytest.mark.netbox

SHA = "ab" * 32
MANIFEST = {
    "schema_version": 1, "name": "gpu-testimg", "version": "20261123.1", "build_key": "cd" * 32,
    "base": {"distribution": "debian", "suite": "bookworm", "variant": "minbase", "builder": "mmdebstrap 1.3.5",
             "mirror": "http://deb.debian.org/debian", "key": "k", "sha256": SHA},
    "kernel": {"release": "6.1.0-35-amd64", "package": "linux-image-6.1.0-35-amd64", "version": "6.1.137-1"},
    "cmdline": "intel_iommu=on iommu=pt transparent_hugepage=always",
    "tuning": {"thp": "always"}, "gpu_stack": {}, "packages": {"systemd": "252.38-1~deb12u1"},
    "artifacts": {"raw": {"file": "gpu-testimg-20261123.1.raw", "sha256": SHA, "bytes": 1024},
                  "qcow2": {"file": "gpu-testimg-20261123.1.qcow2", "sha256": "ef" * 32, "bytes": 512}},
    "built_at": "2026-11-23T02:40:00Z", "git_revision": "0" * 40,
}
SLUG = "gpu-testimg-20261123-1"


def manifest(**changes):
    m = copy.deepcopy(MANIFEST)
    m.update(changes)
    return m


def run_task(tmp_path, args: dict, *flags):
    """One gpucloud.infra.netbox_image(_info) task on localhost; returns (process, task result)."""
    module = args.pop("_module", "gpucloud.infra.netbox_image")
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "task", module: args, "register": "out"},
                       {"name": "result", "ansible.builtin.copy": {
                           "content": "{{ out | to_json }}", "dest": str(tmp_path / "result.json")},
                        "check_mode": False}]}]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps(play))
    (tmp_path / "result.json").unlink(missing_ok=True)
    proc = ansible_playbook(str(book), *flags)
    result = json.loads((tmp_path / "result.json").read_text()) if (tmp_path / "result.json").exists() else None
    return proc, result


def device(nb, name):
    return nb.list("dcim/devices", name=name)[0]


def platform(nb, slug):
    found = nb.list("dcim/platforms", slug=slug)
    return found[0] if found else None


def test_register_assign_rerun_and_check_mode(restore_fleet_after, nb, fleet, tmp_path):
    names = [s.name for s in fleet.servers]
    one, by_filter = names[0], [s.name for s in fleet.servers if s.rack == fleet.servers[1].rack]
    path = tmp_path / "gpu-testimg-20261123.1.manifest.json"
    path.write_text(json.dumps(MANIFEST))
    rack_id = nb.list("dcim/racks", name=fleet.servers[1].rack)[0]["id"]
    args = {"manifest_path": str(path), "devices": [one], "device_filter": {"rack_id": [rack_id]}}

    proc, checked = run_task(tmp_path, dict(args), "--check", "--diff")
    assert proc.returncode == 0, proc.stdout
    assert checked["changed"] and checked["platform_id"] is None
    assert set(checked["assigned"]) == {one, *by_filter}
    assert platform(nb, SLUG) is None and platform(nb, "gpu-testimg") is None, "check mode must not write"
    assert device(nb, one)["platform"] is None

    proc, applied = run_task(tmp_path, dict(args))
    assert proc.returncode == 0, proc.stdout
    assert applied["changed"] and applied["platform"] == SLUG and applied["family"] == "gpu-testimg"
    version = platform(nb, SLUG)
    assert version["parent"]["id"] == platform(nb, "gpu-testimg")["id"]
    cf = version["custom_fields"]
    assert (cf["image_version"], cf["image_build_key"], cf["image_sha256"]) == ("20261123.1", "cd" * 32, "ef" * 32)
    assert cf["image_manifest"] == MANIFEST
    for name in {one, *by_filter}:
        assert device(nb, name)["platform"]["slug"] == SLUG, name
    assert version["device_count"] == len({one, *by_filter})

    for flags in ((), ("--check",)):
        proc, again = run_task(tmp_path, dict(args), *flags, "--diff")
        assert proc.returncode == 0, proc.stdout
        assert not again["changed"] and again["assigned"] == [], (flags, again)

    # The device's platform is what the inventory plugin exports (hostvar and group).
    inv = tmp_path / "img.gpucloud_netbox.yml"
    inv.write_text("plugin: gpucloud_netbox\ndevice_roles: [gpu-server]\ninterfaces: false\n")
    proc, data = ansible_inventory(inventory=inv)
    assert proc.returncode == 0, proc.stderr
    assert data["_meta"]["hostvars"][one]["platform"] == SLUG
    assert {one, *by_filter} <= set(data[f"platform_{SLUG}".replace("-", "_")]["hosts"])

    # What the deploy role reads back.
    proc, info = run_task(tmp_path, {"_module": "gpucloud.infra.netbox_image_info", "platforms": [SLUG]})
    assert proc.returncode == 0, proc.stdout
    assert info["manifests"] == {SLUG: MANIFEST}
    assert info["platforms"][SLUG]["build_key"] == "cd" * 32
    assert info["platforms"][SLUG]["family"] == "gpu-testimg"

    # A new version moves one node; the old one cannot be removed while nodes still run it.
    newer = manifest(version="20261124.1", build_key="12" * 32)
    proc, moved = run_task(tmp_path, {"manifest": newer, "devices": [one]}, "--diff")
    assert proc.returncode == 0 and moved["changed"] and moved["assigned"] == [one]
    assert SLUG in proc.stdout and "gpu-testimg-20261124-1" in proc.stdout  # the diff shows the move
    assert device(nb, one)["platform"]["slug"] == "gpu-testimg-20261124-1"
    proc, _ = run_task(tmp_path, {"state": "absent", "name": "gpu-testimg", "version": "20261123.1"})
    assert proc.returncode != 0
    still = sorted(set(by_filter) - {one})
    assert "refusing to remove gpu-testimg-20261123-1" in proc.stdout and still[0] in proc.stdout, proc.stdout
    assert platform(nb, SLUG) is not None

    proc, _ = run_task(tmp_path, {"manifest": newer, "devices": by_filter})
    assert proc.returncode == 0
    proc, removed = run_task(tmp_path, {"state": "absent", "name": "gpu-testimg", "version": "20261123.1"})
    assert proc.returncode == 0 and removed["changed"] and removed["removed"] == [SLUG]
    assert platform(nb, SLUG) is None and platform(nb, "gpu-testimg") is not None
    proc, removed = run_task(tmp_path, {"state": "absent", "name": "gpu-testimg", "version": "20261123.1"})
    assert proc.returncode == 0 and not removed["changed"]


def test_bad_manifest_names_every_field_and_writes_nothing(lab_env, fleet, nb, tmp_path):
    before = nb.get("core/object-changes", limit=1)["count"]
    bad = manifest(version="", build_key="xyz", artifacts={"raw": {"file": "a/b.raw", "sha256": "no"}})
    del bad["kernel"]
    del bad["name"]
    proc, _ = run_task(tmp_path, {"manifest": bad, "devices": [fleet.servers[0].name]})
    assert proc.returncode != 0
    for field in ("name: expected", "version: expected", "build_key: expected", "kernel: expected",
                  "artifacts.raw.file: expected", "artifacts.raw.sha256: expected", "artifacts.raw.bytes: expected"):
        assert field in proc.stdout, (field, proc.stdout[-3000:])
    assert "7 error(s)" in proc.stdout
    assert nb.get("core/object-changes", limit=1)["count"] == before


def test_unknown_devices_filters_and_platforms_are_named(lab_env, fleet, nb, tmp_path):
    proc, _ = run_task(tmp_path, {"manifest": MANIFEST, "devices": [fleet.servers[0].name, "no-such-node"]})
    assert proc.returncode != 0 and "devices not in NetBox: no-such-node" in proc.stdout
    # NetBox would ignore "rack" (the filter is rack_id) and match every device: refused.
    proc, _ = run_task(tmp_path, {"manifest": MANIFEST, "device_filter": {"rack": "dc1-r01-k01", "role": "gpu-server"}})
    assert proc.returncode != 0 and "device_filter.rack: not a NetBox device filter" in proc.stdout
    assert "device_filter.role" not in proc.stdout
    assert platform(nb, SLUG) is None
    proc, _ = run_task(tmp_path, {"_module": "gpucloud.infra.netbox_image_info", "platforms": ["debian-12", "nope"]})
    assert proc.returncode != 0 and "no image platform in NetBox for: debian-12, nope" in proc.stdout


@pytest.mark.parametrize(("change", "field"), [
    ({"schema_version": 2}, "schema_version"),
    ({"name": "GPU Image"}, "name"),
    ({"artifacts": {}}, "artifacts"),
    ({"built_at": None}, "built_at"),
])
def test_manifest_validation(change, field):
    errors = netbox_image.validate_manifest(manifest(**change))
    assert len(errors) == 1 and errors[0].startswith(f"{field}: expected"), errors


def test_slugs_and_image_sha():
    assert netbox_image.version_slug("gpu-debian12", "20261123.1") == "gpu-debian12-20261123-1"
    family, version = netbox_image.desired_platforms(MANIFEST)
    assert family["slug"] == "gpu-testimg" and version["parent"] == {"slug": "gpu-testimg"}
    assert version["custom_fields"]["image_sha256"] == "ef" * 32  # the qcow2's
    raw_only = manifest(artifacts={"raw": MANIFEST["artifacts"]["raw"]})
    assert netbox_image.image_sha256(raw_only) == SHA
