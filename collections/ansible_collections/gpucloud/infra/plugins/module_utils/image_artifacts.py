# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""From a tuned image root to bootable artifacts and the manifest that pins them.

raw is an ext4 file system made by `mkfs.ext4 -d` straight from the root directory (no mount,
no loop device, no device-mapper), labelled so the kernel finds it with root=LABEL=...; qcow2 is
the raw converted by qemu-img; squashfs is the root for PXE/diskless boot; the kernel and initrd
are artifacts too, since PXE and direct boot need them beside the root.

The manifest is the attestation: base, kernel, cmdline, every package, the pinned GPU stack,
the tuning as applied, the sha256 of every artifact, build time and git revision. The image
carries its own identity in /etc/gpucloud/image.json (name, version, build key) so a live node
can say which build it runs; the artifact hashes cannot be inside the artifacts they hash.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from ansible_collections.gpucloud.infra.plugins.module_utils.image_base import sha256_file

FORMATS = ("raw", "qcow2", "squashfs")
ROOT_LABEL = "gpucloud-root"
SCHEMA_VERSION = 1


class ArtifactError(Exception):
    """An artifact could not be made; the message says which and why."""


def _run(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise ArtifactError(f"{' '.join(argv[:2])} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}")
    return proc.stdout


def scrub(root: Path) -> None:
    """What must not travel in an image: the build's resolver and service block, a machine id
    and SSH host keys (every node would share them), downloaded .debs."""
    (root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/machine-id").write_text("")  # empty: systemd makes a new one on first boot
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def stamp(root: Path, identity: dict) -> None:
    target = root / "etc/gpucloud/image.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")


def kernel_of(root: Path) -> dict:
    """The newest installed kernel (there is one in a fresh image), with its package."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"), key=lambda p: [int(x) if x.isdigit() else x
                                                                        for x in re.split(r"[.-]", p.name)])
    if not kernels:
        raise ArtifactError("the image root has no kernel in /boot; add a kernel package to the base packages")
    release = kernels[-1].name.removeprefix("vmlinuz-")
    package = f"linux-image-{release}"
    return {"release": release, "package": package, "version": packages(root).get(package, "unknown"),
            "vmlinuz": kernels[-1], "initrd": root / "boot" / f"initrd.img-{release}"}


def packages(root: Path) -> dict:
    out = _run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
                "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"])
    return {name: version for status, name, version in (line.split("\t") for line in out.splitlines())
            if status.startswith("ii")}


def read_json(root: Path, relative: str) -> dict:
    path = root / relative
    return json.loads(path.read_text()) if path.is_file() else {}


def _size_bytes(root: Path, free_mb: int) -> int:
    used = int(_run(["du", "-sx", "--block-size=1", str(root)]).split()[0])
    # ext4 metadata (inodes, journal) takes ~10% on small file systems; round up to 64 MiB.
    size = int(used * 1.15) + free_mb * 2**20
    return -(-size // (64 * 2**20)) * 64 * 2**20


def make_raw(root: Path, out: Path, free_mb: int, fs_uuid: str) -> None:
    out.unlink(missing_ok=True)
    with out.open("wb") as fh:
        fh.truncate(_size_bytes(root, free_mb))
    # Fixed UUID and hash seed (derived from the build key) so equal builds make equal file systems.
    _run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-U", fs_uuid, "-E", f"hash_seed={fs_uuid},root_owner=0:0",
          "-d", str(root), str(out)])


def make_qcow2(raw: Path, out: Path, compress: bool) -> None:
    out.unlink(missing_ok=True)
    _run(["qemu-img", "convert", "-O", "qcow2", *(["-c"] if compress else []), str(raw), str(out)])


def make_squashfs(root: Path, out: Path, level: int) -> None:
    out.unlink(missing_ok=True)
    _run(["mksquashfs", str(root), str(out), "-noappend", "-quiet", "-no-progress", "-comp", "zstd",
          "-Xcompression-level", str(level), "-e", "boot"])  # PXE serves kernel and initrd beside it


def describe(path: Path, **extra) -> dict:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, **extra}


def build_artifacts(root: Path, output_dir: Path, stem: str, formats: list[str], options: dict) -> dict:
    """Every artifact of one build, described (file, sha256, size). Files are written under a
    temporary name and renamed when whole, so a failed build leaves no half artifact behind."""
    fs_uuid = str(uuid.UUID(options["build_key"][:32]))
    kernel = kernel_of(root)
    made = {}
    raw = output_dir / f"{stem}.raw"
    if "raw" in formats or "qcow2" in formats:
        make_raw(root, raw.with_suffix(".raw.part"), options["raw_free_mb"], fs_uuid)
        os.replace(raw.with_suffix(".raw.part"), raw)
        made["raw"] = describe(raw, filesystem="ext4", label=ROOT_LABEL, uuid=fs_uuid)
    if "qcow2" in formats:
        part = output_dir / f"{stem}.qcow2.part"
        make_qcow2(raw, part, options["qcow2_compress"])
        os.replace(part, output_dir / f"{stem}.qcow2")
        made["qcow2"] = describe(output_dir / f"{stem}.qcow2", filesystem="ext4", label=ROOT_LABEL, uuid=fs_uuid)
    if "raw" not in formats and raw.exists():
        raw.unlink()
        made.pop("raw", None)
    if "squashfs" in formats:
        part = output_dir / f"{stem}.squashfs.part"
        make_squashfs(root, part, options["squashfs_level"])
        os.replace(part, output_dir / f"{stem}.squashfs")
        made["squashfs"] = describe(output_dir / f"{stem}.squashfs")
    for kind, source in (("kernel", kernel["vmlinuz"]), ("initrd", kernel["initrd"])):
        target = output_dir / f"{stem}.{'vmlinuz' if kind == 'kernel' else 'initrd'}"
        shutil.copyfile(source, target)
        made[kind] = describe(target)
    return made


def manifest(root: Path, identity: dict, base: dict, artifacts: dict, git_revision: str) -> dict:
    kernel = kernel_of(root)
    tuning = read_json(root, "etc/gpucloud/os-tuning.json")
    stack = read_json(root, "etc/gpucloud/gpu-stack.json")
    cmdline_file = root / "etc/gpucloud/kernel-cmdline"
    cmdline = cmdline_file.read_text().strip() if cmdline_file.is_file() else tuning.get("cmdline", "")
    vendor = stack.pop("vendor", None)
    spec = base.get("spec", {})
    return {
        "schema_version": SCHEMA_VERSION,
        **identity,
        "base": {"distribution": spec.get("distribution"), "suite": spec.get("suite"), "variant": spec.get("variant"),
                 "architecture": spec.get("architecture"), "mirror": spec.get("mirror"),
                 "builder": base.get("builder"), "key": base.get("key"), "sha256": base.get("sha256")},
        "kernel": {k: kernel[k] for k in ("release", "package", "version")},
        "cmdline": cmdline,
        "boot": {"root": f"LABEL={ROOT_LABEL}", "append": f"root=LABEL={ROOT_LABEL} ro {cmdline}".strip()},
        "tuning": tuning,
        "gpu_stack": {vendor: stack} if vendor and vendor != "none" else {},
        "packages": packages(root),
        "artifacts": artifacts,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_revision": git_revision,
    }


def write_manifest(output_dir: Path, stem: str, name: str, data: dict) -> Path:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    versioned = output_dir / f"{stem}.manifest.json"
    for target in (versioned, output_dir / f"{name}.manifest.json"):  # the second: "the current one"
        part = target.with_suffix(".json.part")
        part.write_text(text)
        os.replace(part, target)
    return versioned


def prune(output_dir: Path, name: str, keep: int) -> list[str]:
    """Remove all but the newest `keep` versions of an image (by manifest time)."""
    # By the manifest's own name: "gpu-debian12-*" also matches the versions of an image "gpu-debian12-mi300x".
    versions = sorted((p for p in output_dir.glob(f"{name}-*.manifest.json")
                       if json.loads(p.read_text()).get("name") == name), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for stale in versions[keep:]:
        stem = stale.name.removesuffix(".manifest.json")
        for file in output_dir.glob(f"{stem}.*"):
            file.unlink()
            removed.append(file.name)
    return removed
