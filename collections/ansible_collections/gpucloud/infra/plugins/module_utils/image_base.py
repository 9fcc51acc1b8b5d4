# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Base OS root file systems for golden images: built once per set of inputs, cached as a tarball.

A base is the distribution's minimal root plus the packages every image needs (kernel, systemd,
python3 for Ansible's chroot connection, sshd). Building it is the slow part of an image (minutes,
network-bound); everything after it (tuning, GPU stack, artifacts) is redone per build. The cache
key covers exactly what shapes the tarball, so a changed package list or mirror builds a new base
and an unchanged one never rebuilds.

Builders: mmdebstrap (fast, one process, reproducible order), debootstrap as the fallback for
Debian and Ubuntu, dnf --installroot for Rocky. Only Debian is exercised by the tests; Ubuntu and
Rocky are command lines built from the same inputs, for operators whose mirrors serve them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

KEY_VERSION = 1  # bump when the way a base is built changes what it contains
DISTRIBUTIONS = {
    "debian": {"builders": ["mmdebstrap", "debootstrap"], "mirror": "http://deb.debian.org/debian"},
    "ubuntu": {"builders": ["mmdebstrap", "debootstrap"], "mirror": "http://archive.ubuntu.com/ubuntu",
               "components": ["main", "universe"]},
    "rocky": {"builders": ["dnf"], "mirror": "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/"},
}
VARIANTS = {"minbase", "buildd", "standard"}


class BaseError(Exception):
    """A base cannot be built; the message says why."""


def default_cache_dir() -> Path:
    env = os.environ.get("GPUCLOUD_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gpucloud" / "images"


def spec_of(params: dict) -> dict:
    """The inputs that shape the tarball, normalised (order of packages does not matter)."""
    distribution = params["distribution"]
    defaults = DISTRIBUTIONS[distribution]
    return {
        "key_version": KEY_VERSION,
        "distribution": distribution,
        "suite": params["suite"],
        "variant": params["variant"],
        "architecture": params["architecture"],
        "mirror": params.get("mirror") or defaults["mirror"],
        "components": sorted(params.get("components") or defaults.get("components", ["main"])),
        "packages": sorted(set(params.get("packages") or [])),
    }


def key_of(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def paths(cache_dir: Path, key: str) -> dict:
    return {"tarball": cache_dir / f"base-{key}.tar", "meta": cache_dir / f"base-{key}.json",
            "lock": cache_dir / f"base-{key}.lock"}


def cached(cache_dir: Path, key: str) -> dict | None:
    """The metadata of a complete cached base, or None. The metadata is written last, so its
    presence means the tarball is whole."""
    p = paths(cache_dir, key)
    if not (p["meta"].is_file() and p["tarball"].is_file()):
        return None
    return json.loads(p["meta"].read_text())


def pick_builder(spec: dict, preferred: str = "auto") -> str:
    candidates = DISTRIBUTIONS[spec["distribution"]]["builders"]
    if preferred != "auto":
        if preferred not in candidates:
            raise BaseError(f"builder {preferred!r} cannot build {spec['distribution']}; expected one of {candidates}")
        candidates = [preferred]
    for name in candidates:
        if shutil.which(name):
            return name
    raise BaseError(f"none of {candidates} is installed; install one (Debian: apt-get install {candidates[0]})")


def command(builder: str, spec: dict, target: str) -> list[str]:
    """The builder's command line; `target` is a tarball for mmdebstrap, a directory otherwise."""
    packages = spec["packages"]
    if builder == "mmdebstrap":
        return ["mmdebstrap", f"--variant={spec['variant']}", "--mode=root", "--format=tar",
                f"--architectures={spec['architecture']}", f"--components={','.join(spec['components'])}",
                *([f"--include={','.join(packages)}"] if packages else []),
                spec["suite"], target, spec["mirror"]]
    if builder == "debootstrap":
        return ["debootstrap", f"--variant={spec['variant']}", f"--arch={spec['architecture']}",
                f"--components={','.join(spec['components'])}",
                *([f"--include={','.join(packages)}"] if packages else []),
                spec["suite"], target, spec["mirror"]]
    # dnf: the suite is the release version (e.g. 9); the variant maps to a minimal install.
    return ["dnf", "-y", f"--installroot={target}", f"--releasever={spec['suite']}", "--setopt=install_weak_deps=False",
            f"--repofrompath=base,{spec['mirror']}", "--repo=base", "install", "systemd", "dnf", *packages]


def builder_version(builder: str) -> str:
    try:
        out = subprocess.run([builder, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return builder
    first = out.strip().splitlines()[0] if out.strip() else ""
    return first if first.startswith(builder) else f"{builder} {first}".strip()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as fh:
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        raise BaseError(f"{argv[0]} failed with exit code {proc.returncode}; the end of {log}:\n{tail}")


def _build_into(builder: str, spec: dict, tarball: Path, work: Path, log: Path) -> None:
    if builder == "mmdebstrap":
        _run(command(builder, spec, str(tarball)), log)
        return
    root = work / "root"
    root.mkdir()
    _run(command(builder, spec, str(root)), log)
    _run(["tar", "--numeric-owner", "--xattrs", "-cpf", str(tarball), "-C", str(root), "."], log)


def build(cache_dir: Path, spec: dict, preferred: str = "auto") -> dict:
    """Build the base unless a complete one is cached; safe against concurrent builds of one key."""
    key = key_of(spec)
    p = paths(cache_dir, key)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with p["lock"].open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second build of the same base waits and then finds it cached
        meta = cached(cache_dir, key)
        if meta:
            return {"meta": meta, "created": False}
        builder = pick_builder(spec, preferred)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".build-{key}-") as work:
            partial = Path(work) / "base.tar"
            _build_into(builder, spec, partial, Path(work), cache_dir / f"base-{key}.log")
            os.replace(partial, p["tarball"])
        meta = {"key": key, "spec": spec, "builder": builder_version(builder),
                "sha256": sha256_file(p["tarball"]), "bytes": p["tarball"].stat().st_size,
                "build_seconds": round(time.monotonic() - started, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = p["meta"].with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, p["meta"])
        return {"meta": meta, "created": True}


def validate(params: dict) -> list[str]:
    """Every problem with the inputs, at once."""
    errors = []
    if params["distribution"] not in DISTRIBUTIONS:
        errors.append(f"distribution: expected one of {sorted(DISTRIBUTIONS)}, got {params['distribution']!r}")
    if params["variant"] not in VARIANTS:
        errors.append(f"variant: expected one of {sorted(VARIANTS)}, got {params['variant']!r}")
    bad = [p for p in params.get("packages") or [] if not p or any(c in p for c in " ,=\t\n")]
    if bad:
        errors.append(f"packages: expected bare package names (no spaces, commas or versions), got {bad}")
    if not params["suite"] or "/" in params["suite"]:
        errors.append(f"suite: expected a release name such as bookworm, got {params['suite']!r}")
    return errors
