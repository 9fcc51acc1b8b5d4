# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""GPU stacks: a release profile pins one exact Debian version per component (driver, CUDA/ROCm, NCCL/RCCL, ...).

This module validates stacks, reads what dpkg has installed and what apt can offer, and plans the install:
every pinned package is kept, installed or changed, or the whole plan is refused. It runs on the controller
(profiles, validation) and inside the target (dpkg/apt), so it imports nothing outside the standard library at
module level: a minimal image root has no PyYAML.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

VENDORS = ("nvidia", "amd", "intel")
PROFILE_DIR = Path(__file__).resolve().parents[2] / "profiles" / "gpu_stack"

# Debian policy 5.6.1 (package names) and 5.6.12 (versions: [epoch:]upstream[-revision], upstream starts with a digit).
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
VERSION_RE = re.compile(r"^(\d+:)?\d[A-Za-z0-9.+~:-]*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
REPO_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
REPO_KEY_FIELDS = ("signed_by", "key", "key_url")

# `apt-cache policy` version table: " *** 5.2.3-2 500" then "        500 http://... Packages" per source.
POLICY_HEADER_RE = re.compile(r"^(\S+):$")
POLICY_VERSION_RE = re.compile(r"^ (\*\*\*| {3}) (\S+) (-?\d+)$")
POLICY_SOURCE_RE = re.compile(r"^ {8}(-?\d+) (.+)$")
DPKG_STATUS_SOURCE = "/var/lib/dpkg/status"
DPKG_FORMAT = "${Package}\\t${Version}\\t${db:Status-Status}\\t${db:Status-Want}\\n"

LISTS_DIR = "/var/lib/apt/lists"
UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"


class StackError(Exception):
    pass


# ---- profiles and validation (controller side) ----

def load_profile(name_or_path: str) -> dict:
    """A release profile by name (profiles/gpu_stack/<name>.yml of this collection) or by path."""
    import yaml  # controller only: the target may have no PyYAML

    path = Path(name_or_path)
    if path.suffix not in (".yml", ".yaml"):
        path = PROFILE_DIR / f"{name_or_path}.yml"
    if not path.is_file():
        known = ", ".join(profile_names()) or "none"
        raise StackError(f"gpu stack profile {name_or_path!r} not found ({path}); known profiles: {known}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise StackError(f"gpu stack profile {path} is not a mapping")
    return data


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yml"))


def resolve(vendor: str, profile: str = "", components: dict | None = None,
            repositories: list | None = None, release: str = "") -> dict:
    """The stack to install, plus every problem found: the profile's pins (or `components` instead), the
    profile's repositories plus `repositories`, the profile's release name (or `release`)."""
    stack: dict = {"vendor": vendor, "release": "", "repositories": [], "components": {}}
    errors: list[str] = []
    if profile:
        try:
            data = load_profile(profile)
        except StackError as exc:
            errors.append(f"gpu_stack_profile: {exc}")
            data = {}
        stack.update({k: data[k] for k in ("release", "repositories", "components") if data.get(k)})
        if data and data.get("vendor") != vendor:
            errors.append(f"gpu_stack_profile: {profile} is a {data.get('vendor')!r} stack, "
                          f"but gpu_stack_vendor is {vendor!r}")
    elif not components:
        errors.append("gpu_stack_profile or gpu_stack_components is required for a GPU stack")
    elif not release:
        errors.append("gpu_stack_release is required with gpu_stack_components and no gpu_stack_profile")
    if components:
        stack["components"] = components
    stack["repositories"] = list(stack["repositories"]) + list(repositories or [])
    stack["release"] = release or stack["release"]
    return {**stack, "errors": errors + validate(stack)}


def validate(stack: dict) -> list[str]:
    """Every problem in a stack, all at once (field and what was expected)."""
    errors = []
    if stack.get("vendor") not in VENDORS:
        errors.append(f"vendor must be one of {', '.join(VENDORS)}, got {stack.get('vendor')!r}")
    if not isinstance(stack.get("release"), str) or not stack.get("release"):
        errors.append("release must be a non-empty string (the stack release name)")
    errors += validate_components(stack.get("components"))
    errors += _validate_repositories(stack.get("repositories"))
    return errors


def validate_components(components) -> list[str]:
    if not isinstance(components, dict) or not components:
        return ["components must be a non-empty mapping of component name to {package, version}"]
    errors, seen = [], {}
    for name, pin in components.items():
        where = f"components.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            errors.append(f"{where}: component names are lower-case identifiers (e.g. driver, cuda, nccl)")
        if not isinstance(pin, dict):
            errors.append(f"{where} must be a mapping {{package, version}}, got {pin!r}")
            continue
        package, version = pin.get("package"), pin.get("version")
        if not isinstance(package, str) or not PACKAGE_RE.match(package):
            errors.append(f"{where}.package must be a Debian package name, got {package!r}")
        elif package in seen:
            errors.append(f"{where}.package {package} is also pinned by components.{seen[package]}")
        else:
            seen[package] = name
        if not isinstance(version, str) or not VERSION_RE.match(version):
            errors.append(f"{where}.version must be an exact Debian version string (quoted), got {version!r}")
        extra = sorted(set(pin) - {"package", "version"})
        if extra:
            errors.append(f"{where}: unknown keys {', '.join(map(str, extra))} (expected package, version)")
    return errors


def _validate_repositories(repositories) -> list[str]:
    if repositories is None:
        return []
    if not isinstance(repositories, list):
        return ["repositories must be a list of deb822 sources"]
    errors, names = [], set()
    for index, repo in enumerate(repositories):
        where = f"repositories[{index}]"
        if not isinstance(repo, dict):
            errors.append(f"{where} must be a mapping")
            continue
        name = repo.get("name")
        if not isinstance(name, str) or not REPO_NAME_RE.match(name):
            errors.append(f"{where}.name must be lower-case letters, digits, dots and dashes, got {name!r}")
        elif name in names:
            errors.append(f"{where}.name {name} is used twice")
        names.add(name)
        uris, suites = repo.get("uris"), repo.get("suites")
        if not _str_list(uris) or not all(re.match(r"^(https?|file)://", u) for u in uris):
            errors.append(f"{where}.uris must be a non-empty list of http(s):// or file:// URIs, got {uris!r}")
        if not _str_list(suites):
            errors.append(f"{where}.suites must be a non-empty list, got {suites!r}")
        flat = _str_list(suites) and all(s.endswith("/") for s in suites)
        components = repo.get("components", [])
        if not isinstance(components, list) or (not flat and not _str_list(components)):
            errors.append(f"{where}.components must list the archive components (empty only for flat "
                          f"suites ending in /), got {components!r}")
        keys = [k for k in REPO_KEY_FIELDS if repo.get(k)]
        if len(keys) != 1:
            errors.append(f"{where} needs exactly one of signed_by (keyring path on the target), key (inline "
                          f"ASCII-armored) or key_url, got {', '.join(keys) or 'none'}")
    return errors


def _str_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def packages(components: dict) -> list[str]:
    return [pin["package"] for pin in components.values()]


# ---- reading dpkg and apt (target side) ----

def parse_installed(text: str) -> tuple[dict[str, str], list[str]]:
    """From dpkg-query's DPKG_FORMAT lines: {package: version} of the installed packages, and the packages whose
    selection is hold (apt-mark hold; a hold may be set before the package is installed)."""
    installed, held = {}, []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            continue
        if fields[2] == "installed":
            installed[fields[0]] = fields[1]
        if fields[3] == "hold":
            held.append(fields[0])
    return installed, sorted(held)


def parse_policy(text: str) -> dict[str, list[str]]:
    """{package: [versions a repository offers]} from `apt-cache policy`; a version only dpkg's status file
    knows (installed, no longer in any repository) is not available."""
    available: dict[str, list[str]] = {}
    package = version = None
    for line in text.splitlines():
        header = POLICY_HEADER_RE.match(line)
        if header:
            package, version = header.group(1), None
            available.setdefault(package, [])
            continue
        row = POLICY_VERSION_RE.match(line)
        if row and package:
            version = row.group(2)
            continue
        source = POLICY_SOURCE_RE.match(line)
        offered = source and package and version and source.group(2).strip() != DPKG_STATUS_SOURCE
        if offered and version not in available[package]:
            available[package].append(version)
    return available


def read_installed(run, names: list[str]) -> tuple[dict[str, str], list[str]]:
    # rc 1 only means some names are not installed; the others are still printed.
    rc, out, err = run(["dpkg-query", "-W", "-f", DPKG_FORMAT, *names])
    if rc not in (0, 1):
        raise StackError(f"dpkg-query failed (rc {rc}): {err.strip()}")
    return parse_installed(out)


def read_available(run, names: list[str], apt_options: list[str] | None = None) -> dict[str, list[str]]:
    rc, out, err = run(["apt-cache", *(apt_options or []), "policy", *names])
    if rc != 0:
        raise StackError(f"apt-cache policy failed (rc {rc}): {err.strip()}")
    available = parse_policy(out)
    return {name: available.get(name, []) for name in names}


def lists_age(now: float | None = None) -> float | None:
    """Seconds since the last successful `apt-get update`, None when there are no package lists at all (a fresh
    image root: mmdebstrap leaves an empty lists directory, whose own age means nothing)."""
    lists = [n for n in (os.listdir(LISTS_DIR) if os.path.isdir(LISTS_DIR) else []) if n.endswith("Packages")]
    if not lists:
        return None
    # apt-get update refreshes the lists directory; APT::Periodic's stamp only when it ran the update itself
    latest = max(os.path.getmtime(p) for p in (UPDATE_STAMP, LISTS_DIR) if os.path.exists(p))
    return (now or time.time()) - latest


def update_lists(run, apt_options: list[str] | None = None) -> None:
    rc, out, err = run(["apt-get", *(apt_options or []), "-q", "update"])
    if rc != 0 or re.search(r"^(E:|W: Failed to fetch)", out + err, re.M):
        raise StackError(f"apt-get update failed (rc {rc}): {(err or out).strip()[-2000:]}")


class ScratchLists:
    """Package lists in a temporary directory, so that check mode can ask apt what it would offer without
    touching /var/lib/apt (a fresh image root has no lists at all)."""

    def __enter__(self) -> list[str]:
        self.path = tempfile.mkdtemp(prefix="gpucloud-apt-")
        os.makedirs(os.path.join(self.path, "lists", "partial"))
        return [f"-oDir::State::Lists={self.path}/lists", f"-oDir::Cache={self.path}",
                "-oDir::Cache::pkgcache=", "-oDir::Cache::srcpkgcache=", "-oAPT::Sandbox::User=root"]

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# ---- planning (pure) ----

def plan(components: dict, installed: dict[str, str], available: dict[str, list[str]],
         allow_change: bool = False, availability_known: bool = True) -> dict:
    """What to do with every pinned package: keep, install, change or refuse. One refusal refuses the plan."""
    steps, install, refusals = {}, [], []
    for name, pin in components.items():
        package, pinned = pin["package"], pin["version"]
        current, offered = installed.get(package), list(available.get(package, []))
        action, reasons = _action(pinned, current, offered, allow_change, availability_known)
        steps[name] = {"package": package, "pinned": pinned, "installed": current, "available": offered,
                       "action": action}
        if action == "refuse":
            refusals.append(f"{package} ({name}): pinned {pinned}, installed {current or '(none)'}, "
                            f"available {', '.join(offered) or '(none)'}: {'; '.join(reasons)}")
        elif action in ("install", "change"):
            install.append(f"{package}={pinned}")
    return {"components": steps, "install": install, "refusals": refusals}


def _action(pinned: str, current: str | None, offered: list[str], allow_change: bool,
            availability_known: bool) -> tuple[str, list[str]]:
    if current == pinned:
        return "keep", []
    reasons = []
    if current is not None and not allow_change:
        reasons.append("installed at another version and gpu_stack_allow_change is false "
                       "(refusing to up/downgrade a live node)")
    if availability_known and pinned not in offered:
        reasons.append("the pinned version is not in any configured repository")
    if reasons:
        return "refuse", reasons
    return ("install" if current is None else "change"), []


def verify(components: dict, installed: dict[str, str]) -> list[str]:
    """Every component not installed at its pin, as text."""
    return [f"{pin['package']} ({name}): pinned {pin['version']}, installed {installed.get(pin['package']) or '(none)'}"
            for name, pin in components.items() if installed.get(pin["package"]) != pin["version"]]


def record(vendor: str, release: str, components: dict) -> dict:
    """The content of /etc/gpucloud/gpu-stack.json (the image manifest's gpu_stack entry, plus the vendor)."""
    return {"vendor": vendor, "release": release,
            "components": {name: {"package": pin["package"], "version": pin["version"]}
                           for name, pin in components.items()}}
