# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A golden image build: its key, whether its artifacts are current, and the root it is built in.

The build key is a digest of everything that shapes an image: the base (by its own key), the
image's settings, the variables handed to the tuning and GPU-stack roles, and the content of the
role and profile directories that turn them into files. Equal keys mean equal images, so a
re-run with nothing changed finds the manifest and does nothing at all (changed=0).

Incremental builds reuse the previous build's root when it came from the same base: Ansible's
idempotence then applies only what changed (a tuning edit rewrites a file or two instead of
re-running every package install and the initramfs), which is what keeps a rebuild under a
minute. A root whose base changed, or a `fresh` build, starts from the base tarball again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

MARKER = ".gpucloud-build"  # in the root's parent: which base the root was extracted from
POLICY_RC = "usr/sbin/policy-rc.d"  # while building, packages must not start services in the root
POLICY_RC_TEXT = "#!/bin/sh\n# gpucloud golden_image: no services start while an image is built\nexit 101\n"


class BuildError(Exception):
    """The build cannot go on; the message says why."""


def tree_digest(paths: list[str]) -> str:
    """Digest of the names and contents of every file under the given paths (sorted, so stable)."""
    digest = hashlib.sha256()
    for top in sorted(paths):
        root = Path(top)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc" or "molecule" in path.parts:
                continue  # test scenarios and bytecode do not shape the image
            digest.update(str(path.relative_to(root.parent)).encode() + b"\0")
            digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def build_key(base_key: str, settings: dict, role_vars: dict, input_paths: list[str]) -> str:
    blob = json.dumps({"base": base_key, "settings": settings, "vars": role_vars,
                       "tree": tree_digest(input_paths)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def manifest_path(output_dir: Path, name: str) -> Path:
    """The current manifest of an image name (a copy of the newest version's)."""
    return output_dir / f"{name}.manifest.json"


def current(output_dir: Path, name: str, key: str) -> dict | None:
    """The manifest when the newest build has this key and its artifacts are intact, else None.
    Artifacts are checked by size, not by hashing gigabytes on every no-change run; a changed
    size or a missing file makes the image stale."""
    path = manifest_path(output_dir, name)
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    if manifest.get("build_key") != key:
        return None
    for artifact in manifest.get("artifacts", {}).values():
        file = output_dir / artifact["file"]
        if not file.is_file() or file.stat().st_size != artifact["bytes"]:
            return None
    return manifest


def _extract(tarball: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    proc = subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tarball),
                           "-C", str(root)], capture_output=True, text=True)
    if proc.returncode:
        raise BuildError(f"cannot extract {tarball}: {proc.stderr.strip()[-500:]}")


def _ready_for_chroot(root: Path) -> None:
    """Name resolution for apt, and no service starts, while the roles work in the root."""
    policy = root / POLICY_RC
    policy.write_text(POLICY_RC_TEXT)
    policy.chmod(0o755)
    resolv = root / "etc" / "resolv.conf"
    if resolv.is_symlink():
        resolv.unlink()
    shutil.copyfile("/etc/resolv.conf", resolv)


def prepare_root(work_dir: Path, tarball: Path, base_key: str, fresh: bool) -> dict:
    """The root to build in: the previous one when it came from this base (incremental), else a
    new extraction. Returns what was done."""
    root = work_dir / "rootfs"
    marker = work_dir / MARKER
    previous = json.loads(marker.read_text()) if marker.is_file() else {}
    reuse = not fresh and root.is_dir() and previous.get("base_key") == base_key and previous.get("clean", False)
    work_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"base_key": base_key, "clean": False}))  # until finalize says otherwise
    if not reuse:
        _extract(tarball, root)
    _ready_for_chroot(root)
    return {"root": str(root), "reused": reuse}


def mark_clean(work_dir: Path, base_key: str) -> None:
    """A root that went through finalize whole may be reused by the next incremental build."""
    (work_dir / MARKER).write_text(json.dumps({"base_key": base_key, "clean": True}))


def git_revision(path: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "unknown"
    if proc.returncode:
        return "unknown"
    return proc.stdout.strip() + ("-dirty" if dirty else "")


def ensure_dir(path: str) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, 0o755)
    return p
