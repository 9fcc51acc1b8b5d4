"""The golden image pipeline for real: mmdebstrap base (cached), os_tuning and gpu_stack through the
chroot connection, raw/qcow2/squashfs artifacts and the manifest; no-change re-run, check mode,
incremental rebuild, and the pieces' logic."""

import hashlib
import json
import subprocess

import pytest
from image_support import IMAGE, NODE_TYPE, build, recap

from ansible_collections.gpucloud.infra.plugins.module_utils import image_base, image_build


def sha256(path):
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_artifacts_match_the_manifest(built_image, image_output):
    m = built_image
    assert set(m["artifacts"]) == {"raw", "qcow2", "squashfs", "kernel", "initrd"}
    for kind, art in m["artifacts"].items():
        path = image_output / art["file"]
        assert path.stat().st_size == art["bytes"], kind
        assert sha256(path) == art["sha256"], kind
    fs = subprocess.run(["dumpe2fs", "-h", str(image_output / m["artifacts"]["raw"]["file"])],
                        capture_output=True, text=True).stdout
    assert "gpucloud-root" in fs and m["artifacts"]["raw"]["uuid"] in fs
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json",
                                      str(image_output / m["artifacts"]["qcow2"]["file"])],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2"


def test_manifest_pins_what_the_image_is(built_image):
    m = built_image
    assert m["schema_version"] == 1 and m["name"] == IMAGE and len(m["build_key"]) == 64
    assert m["base"]["distribution"] == "debian" and m["base"]["suite"] == "bookworm"
    assert m["base"]["builder"].startswith(("mmdebstrap", "debootstrap"))
    assert m["kernel"]["release"].endswith("-amd64") and m["packages"][m["kernel"]["package"]] == m["kernel"]["version"]
    for param in ("intel_iommu=on", "iommu=pt", "transparent_hugepage=always", "hugepages=64"):
        assert param in m["cmdline"].split(), param
    assert m["boot"]["append"].startswith("root=LABEL=gpucloud-root")
    assert m["tuning"]["thp"] == "always" and m["tuning"]["cmdline"] == m["cmdline"]
    assert {"systemd-sysv", "python3", "openssh-server", "pciutils"} <= set(m["packages"])
    assert m["git_revision"] and m["built_at"].endswith("Z")
    assert isinstance(m["gpu_stack"], dict)


def test_image_carries_its_identity(built_image, image_output):
    """Read from the shipped artifact (the work root is reused by later builds, test_tuning_change_... among them)."""
    squashfs = str(image_output / built_image["artifacts"]["squashfs"]["file"])

    def cat(path):
        return subprocess.run(["unsquashfs", "-cat", squashfs, path], capture_output=True, text=True, check=True).stdout

    def listed(pattern):
        out = subprocess.run(["unsquashfs", "-l", squashfs, pattern], capture_output=True, text=True, check=True)
        return [line.removeprefix("squashfs-root/") for line in out.stdout.splitlines()]

    assert json.loads(cat("etc/gpucloud/image.json")) == {k: built_image[k] for k in ("name", "version", "build_key")}
    assert cat("etc/machine-id") == ""
    assert [f for f in listed("etc/ssh/*") if f.startswith("etc/ssh/ssh_host_")] == []
    assert "usr/sbin/policy-rc.d" not in listed("usr/sbin/*")
    assert "etc/ssh/sshd_config" in listed("etc/ssh/*")  # the listing works: absent files are really absent


def test_rebuild_with_nothing_changed_changes_nothing(built_image, image_output):
    before = {p.name: p.stat().st_mtime_ns for p in image_output.iterdir()}
    proc = build(image_output)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc.stdout)["changed"] == 0, proc.stdout[-4000:]
    assert {p.name: p.stat().st_mtime_ns for p in image_output.iterdir()} == before


def test_check_mode_changes_nothing(built_image, image_output):
    before = {p.name: p.stat().st_mtime_ns for p in image_output.iterdir()}
    proc = build(image_output, "--check", golden_image_hostname="changed-in-check-mode")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert {p.name: p.stat().st_mtime_ns for p in image_output.iterdir()} == before
    assert json.loads((image_output / f"{IMAGE}.manifest.json").read_text())["build_key"] == built_image["build_key"]


@pytest.mark.slow
def test_tuning_change_rebuilds_incrementally(built_image, image_output, tmp_path):
    """A hugepage change on a cached base: a new version with the new cmdline; the previous stays."""
    out = tmp_path / "images"
    proc = build(out, os_tuning_hugepages_by_node_type={"default": {"size": "2M", "count": 0},
                                                        NODE_TYPE: {"size": "2M", "count": 32}})
    assert proc.returncode == 0, proc.stdout[-6000:]
    manifest = json.loads((out / f"{IMAGE}.manifest.json").read_text())
    assert "hugepages=32" in manifest["cmdline"].split()
    assert manifest["build_key"] != built_image["build_key"]
    assert "reused" in proc.stdout or manifest["base"]["key"] == built_image["base"]["key"]


def test_bad_settings_are_all_reported(image_output):
    proc = build(image_output, golden_image_name="Bad Name", golden_image_keep=0,
                 golden_image_root_authorized_keys=["not a key"])
    assert proc.returncode != 0
    for field in ("golden_image_name", "golden_image_keep", "golden_image_root_authorized_keys"):
        assert field in proc.stdout, field


@pytest.mark.parametrize(("builder", "expected"), [
    ("mmdebstrap", ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar", "--architectures=amd64",
                    "--components=main", "--include=python3,systemd-sysv", "bookworm", "OUT",
                    "http://deb.debian.org/debian"]),
    ("debootstrap", ["debootstrap", "--variant=minbase", "--arch=amd64", "--components=main",
                     "--include=python3,systemd-sysv", "bookworm", "OUT", "http://deb.debian.org/debian"]),
])
def test_builder_command_lines(builder, expected):
    spec = image_base.spec_of({"distribution": "debian", "suite": "bookworm", "variant": "minbase",
                               "architecture": "amd64", "packages": ["systemd-sysv", "python3", "python3"]})
    assert image_base.command(builder, spec, "OUT") == expected


def test_ubuntu_and_rocky_are_configurable_targets():
    ubuntu = image_base.spec_of({"distribution": "ubuntu", "suite": "noble", "variant": "minbase",
                                 "architecture": "amd64", "packages": []})
    assert ubuntu["components"] == ["main", "universe"] and "ubuntu" in ubuntu["mirror"]
    rocky = image_base.spec_of({"distribution": "rocky", "suite": "9", "variant": "minbase",
                                "architecture": "amd64", "packages": ["kernel"]})
    assert image_base.command("dnf", rocky, "/r")[:4] == ["dnf", "-y", "--installroot=/r", "--releasever=9"]


def test_base_key_ignores_package_order_but_not_content():
    def key(**kw):
        return image_base.key_of(image_base.spec_of({"distribution": "debian", "suite": "bookworm",
                                                     "variant": "minbase", "architecture": "amd64", **kw}))
    assert key(packages=["a", "b"]) == key(packages=["b", "a"])
    assert key(packages=["a"]) != key(packages=["a", "b"])
    assert key(packages=["a"], mirror="http://m/debian") != key(packages=["a"])


def test_base_request_errors_are_all_reported():
    errors = image_base.validate({"distribution": "gentoo", "variant": "huge", "suite": "a/b",
                                  "packages": ["ok", "bad pkg", "pin=1.0"]})
    assert [e.split(":")[0] for e in errors] == ["distribution", "variant", "packages", "suite"]


def test_build_key_follows_role_content(tmp_path):
    role = tmp_path / "os_tuning"
    (role / "templates").mkdir(parents=True)
    (role / "templates" / "sysctl.j2").write_text("a=1\n")
    first = image_build.build_key("base", {"n": 1}, {}, [str(role)])
    (role / "molecule").mkdir()
    (role / "molecule" / "x.yml").write_text("ignored")
    assert image_build.build_key("base", {"n": 1}, {}, [str(role)]) == first
    (role / "templates" / "sysctl.j2").write_text("a=2\n")
    assert image_build.build_key("base", {"n": 1}, {}, [str(role)]) != first


def test_pruning_keeps_other_images_with_a_longer_name(tmp_path):
    from ansible_collections.gpucloud.infra.plugins.module_utils import image_artifacts

    for name, version in (("gpu", "1"), ("gpu", "2"), ("gpu-mi300x", "1")):
        stem = f"{name}-{version}"
        (tmp_path / f"{stem}.manifest.json").write_text(json.dumps({"name": name, "version": version}))
        (tmp_path / f"{stem}.qcow2").write_text("x")
    assert sorted(image_artifacts.prune(tmp_path, "gpu", 1)) in (["gpu-1.manifest.json", "gpu-1.qcow2"],
                                                                 ["gpu-2.manifest.json", "gpu-2.qcow2"])
    assert (tmp_path / "gpu-mi300x-1.qcow2").exists()
