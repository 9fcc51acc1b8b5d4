"""The gpu_stack role and its planning logic.

Unit tests drive module_utils/gpu_stack.py with data; the role tests run real apt against deb.debian.org inside
real image roots (the cached golden-image base, extracted) through community.general.chroot, with the ROCm and
Intel pieces Debian bookworm main ships (vendor repositories are unreachable from here).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import gpu_stack

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECURITY = {"name": "debian-security", "uris": ["http://deb.debian.org/debian-security"],
            "suites": ["bookworm-security"], "components": ["main"],
            "signed_by": "/usr/share/keyrings/debian-archive-keyring.gpg"}

# ---- planning logic ----

POLICY = """\
rocm-smi:
  Installed: 5.2.3-1
  Candidate: 5.2.3-2
  Version table:
     5.2.3-2 1001
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        500 http://mirror.example/debian bookworm/main amd64 Packages
 *** 5.2.3-1 100
        100 /var/lib/dpkg/status
libze1:
  Installed: (none)
  Candidate: 1.8.12-1
  Version table:
     1.9.0-1 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
     1.8.12-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

PINS = {"smi": {"package": "rocm-smi", "version": "5.2.3-2"}}


def test_parse_policy_ignores_dpkg_status_only_versions():
    assert gpu_stack.parse_policy(POLICY) == {"rocm-smi": ["5.2.3-2"], "libze1": ["1.9.0-1", "1.8.12-1"]}


def test_parse_installed_reads_status_and_holds():
    text = ("rocm-smi\t5.2.3-2\tinstalled\thold\n"
            "rocminfo\t5.2.3-2\tconfig-files\tinstall\n"
            "libze1\t\tnot-installed\thold\n")
    assert gpu_stack.parse_installed(text) == ({"rocm-smi": "5.2.3-2"}, ["libze1", "rocm-smi"])


@pytest.mark.parametrize(("installed", "available", "allow_change", "known", "action", "reasons"), [
    pytest.param("5.2.3-2", [], False, True, "keep", [], id="installed-at-pin-even-if-gone-from-repo"),
    pytest.param(None, ["5.2.3-2"], False, True, "install", [], id="fresh-install"),
    pytest.param(None, ["5.2.3-1"], False, True, "refuse", ["not in any configured repository"],
                 id="pin-not-available"),
    pytest.param("5.2.3-1", ["5.2.3-2", "5.2.3-1"], False, True, "refuse", ["gpu_stack_allow_change is false"],
                 id="installed-differs"),
    pytest.param("5.2.3-1", ["5.2.3-2"], True, True, "change", [], id="installed-differs-allowed"),
    pytest.param("5.2.3-1", [], True, True, "refuse", ["not in any configured repository"],
                 id="allowed-but-not-available"),
    pytest.param("5.2.3-1", [], False, True, "refuse",
                 ["gpu_stack_allow_change is false", "not in any configured repository"], id="both-reasons"),
    pytest.param(None, [], False, False, "install", [], id="availability-unknown-in-check-mode"),
    pytest.param("5.2.3-1", [], False, False, "refuse", ["gpu_stack_allow_change is false"],
                 id="unknown-availability-still-refuses-skew"),
])
def test_plan(installed, available, allow_change, known, action, reasons):
    result = gpu_stack.plan(PINS, {"rocm-smi": installed} if installed else {}, {"rocm-smi": available},
                            allow_change, known)
    assert result["components"]["smi"]["action"] == action
    assert result["install"] == (["rocm-smi=5.2.3-2"] if action in ("install", "change") else [])
    assert len(result["refusals"]) == (action == "refuse")
    for reason in reasons:
        assert reason in result["refusals"][0]
    if action == "refuse":  # the refusal names the package, the pin, what is installed and what is available
        assert result["refusals"][0].startswith(f"rocm-smi (smi): pinned 5.2.3-2, installed {installed or '(none)'}")
        assert f"available {', '.join(available) or '(none)'}" in result["refusals"][0]


def test_plan_refuses_every_package_at_once():
    pins = {"smi": PINS["smi"], "info": {"package": "rocminfo", "version": "9.9-1"}}
    result = gpu_stack.plan(pins, {"rocm-smi": "5.2.3-1"}, {"rocm-smi": ["5.2.3-2"], "rocminfo": ["5.2.3-2"]})
    assert [r.split(" ")[0] for r in result["refusals"]] == ["rocm-smi", "rocminfo"]


def test_verify_lists_every_mismatch():
    pins = {"smi": PINS["smi"], "info": {"package": "rocminfo", "version": "5.2.3-2"}}
    assert gpu_stack.verify(pins, {"rocm-smi": "5.2.3-2", "rocminfo": "5.2.3-2"}) == []
    assert gpu_stack.verify(pins, {"rocm-smi": "5.2.3-1"}) == [
        "rocm-smi (smi): pinned 5.2.3-2, installed 5.2.3-1", "rocminfo (info): pinned 5.2.3-2, installed (none)"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"vendor": "matrox"}, ["vendor must be one of nvidia, amd, intel"]),
    ({"release": ""}, ["release must be a non-empty string"]),
    ({"components": {}}, ["components must be a non-empty mapping"]),
    ({"components": {"Driver": {"package": "x y", "version": 570}}},
     ["components.Driver: component names are lower-case", "components.Driver.package must be a Debian package",
      "components.Driver.version must be an exact Debian version string"]),
    ({"components": {"a": {"package": "rocm-smi", "version": "1-1"}, "b": {"package": "rocm-smi", "version": "1-1"}}},
     ["components.b.package rocm-smi is also pinned by components.a"]),
    ({"components": {"a": {"package": "rocm-smi", "version": "1-1", "hold": True}}}, ["unknown keys hold"]),
    ({"repositories": [{"name": "Bad Name", "uris": ["ftp://x"], "suites": [], "key": "k", "key_url": "u"}]},
     ["repositories[0].name must be", "repositories[0].uris must be", "repositories[0].suites must be",
      "repositories[0].components must list", "needs exactly one of signed_by"]),
    ({"repositories": [{**SECURITY, "components": []}]}, ["repositories[0].components must list"]),
])
def test_validate_reports_every_problem(change, expected):
    stack = {"vendor": "amd", "release": "r", "components": PINS, "repositories": [SECURITY], **change}
    errors = gpu_stack.validate(stack)
    assert len(errors) == len(expected), errors
    for error, text in zip(errors, expected, strict=True):
        assert text in error


@pytest.mark.parametrize("name", gpu_stack.profile_names())
def test_every_profile_is_valid(name):
    profile = gpu_stack.load_profile(name)
    assert gpu_stack.validate(profile) == []
    assert name == profile["release"]
    assert gpu_stack.resolve(profile["vendor"], name)["errors"] == []


def test_resolve_names_the_fields():
    assert gpu_stack.resolve("nvidia", "debian-bookworm-amd")["errors"] == [
        "gpu_stack_profile: debian-bookworm-amd is a 'amd' stack, but gpu_stack_vendor is 'nvidia'"]
    assert "known profiles: " in gpu_stack.resolve("amd", "nope")["errors"][0]
    assert gpu_stack.resolve("amd", components=PINS)["errors"][0].startswith("gpu_stack_release is required")
    stack = gpu_stack.resolve("amd", "debian-bookworm-amd", PINS, [SECURITY], "custom-1")
    assert (stack["release"], stack["components"], stack["repositories"]) == ("custom-1", PINS, [SECURITY])


# ---- the role in image roots ----

@pytest.fixture(scope="module")
def base(base_tarball):
    return Path(os.environ.get("GPUCLOUD_GPU_STACK_BASE_TAR") or base_tarball)


@pytest.fixture(scope="module")
def make_root(base, tmp_path_factory):
    """Extract a fresh image root; every root is removed when the module's tests are done."""
    roots = []

    def make():
        root = tmp_path_factory.mktemp("gpu-stack-root")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-xpf", str(base), "-C", str(root)], check=True)
        roots.append(root)
        return root
    yield make
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def play(root: Path, *args, **role_vars):
    """Run the role in `root` through community.general.chroot; returns (process, recap counters)."""
    work = root.parent / f"{root.name}-play"
    work.mkdir(exist_ok=True)
    (work / "play.yml").write_text(yaml.safe_dump([{"name": "GPU stack", "hosts": "image", "gather_facts": False,
                                                    "roles": ["gpu_stack"]}]))
    host = {"ansible_connection": "community.general.chroot", "ansible_host": str(root),
            "ansible_python_interpreter": "/usr/bin/python3", "gpu_vendor": "AMD", **role_vars}
    (work / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"image": host}}}))
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(work / "inventory.yml"), str(work / "play.yml"),
                           *args], cwd=REPO, env=env, capture_output=True, text=True)
    counters = {}
    for line in proc.stdout.splitlines():
        if line.startswith("image ") and "ok=" in line:
            counters = {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}
    return proc, counters


def dpkg(root: Path, *args) -> str:
    return subprocess.run(["chroot", str(root), *args], capture_output=True, text=True, check=True).stdout


def versions(root: Path, names) -> dict:
    out = dpkg(root, "dpkg-query", "-W", "-f", "${Package} ${Version}\n", *names)
    return dict(line.split(" ", 1) for line in out.splitlines())


def snapshot(root: Path) -> dict:
    """Every file of the root with its size, mode and mtime, except Ansible's temporary files."""
    skip = {"tmp", "var/tmp", "root/.ansible", "proc", "dev"}
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel, d)) not in skip]
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            state[os.path.join(rel, name)] = (st.st_size, st.st_mode, st.st_mtime_ns)
    return state


def failure(proc) -> str:
    return proc.stdout[-6000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def installed_root(make_root):
    """An image root with the debian-bookworm-amd stack installed by the role."""
    root = make_root()
    proc, counters = play(root, gpu_stack_profile="debian-bookworm-amd")
    assert proc.returncode == 0, failure(proc)
    assert counters["changed"] > 0
    return root


def test_installs_the_pinned_stack_records_and_holds_it(installed_root):
    profile = gpu_stack.load_profile("debian-bookworm-amd")
    pins = {pin["package"]: pin["version"] for pin in profile["components"].values()}
    assert versions(installed_root, pins) == pins
    assert set(dpkg(installed_root, "apt-mark", "showhold").split()) >= set(pins)
    record = json.loads((installed_root / "etc/gpucloud/gpu-stack.json").read_text())
    assert record == {"vendor": "amd", "release": "debian-bookworm-amd", "components": profile["components"]}
    preferences = (installed_root / "etc/apt/preferences.d/gpucloud-gpu-stack.pref").read_text()
    for package, version in pins.items():
        assert f"Package: {package}\nPin: version {version}\nPin-Priority: 1001\n" in preferences
    assert not (installed_root / "usr/sbin/policy-rc.d").exists()


def test_second_run_and_check_mode_change_nothing(installed_root):
    for args in ((), ("--check",)):
        before = snapshot(installed_root)
        proc, counters = play(installed_root, *args, gpu_stack_profile="debian-bookworm-amd")
        assert proc.returncode == 0, failure(proc)
        assert counters["changed"] == 0, failure(proc)
        assert snapshot(installed_root) == before


def test_check_mode_on_a_fresh_root_changes_nothing(make_root):
    root = make_root()
    before = snapshot(root)
    proc, counters = play(root, "--check", gpu_stack_profile="debian-bookworm-amd")
    assert proc.returncode == 0, failure(proc)
    assert counters["changed"] > 0
    assert "would install libhsa-runtime64-1=5.2.3-3" in proc.stdout
    assert snapshot(root) == before


def test_check_mode_still_refuses(make_root):
    root = make_root()
    before = snapshot(root)
    proc, _ = play(root, "--check", gpu_stack_vendor="intel", gpu_stack_release="t",
                   gpu_stack_components={"level_zero": {"package": "libze1", "version": "0.1-1"}})
    assert proc.returncode != 0
    assert "libze1 (level_zero): pinned 0.1-1, installed (none), available 1.8.12-1" in proc.stdout
    assert snapshot(root) == before


def test_refuses_a_version_no_repository_offers(installed_root):
    before = snapshot(installed_root)
    components = {**gpu_stack.load_profile("debian-bookworm-amd")["components"],
                  "level_zero": {"package": "libze1", "version": "1.8.12-99"}}
    proc, _ = play(installed_root, gpu_stack_profile="debian-bookworm-amd", gpu_stack_components=components)
    assert proc.returncode != 0
    assert ("libze1 (level_zero): pinned 1.8.12-99, installed (none), available 1.8.12-1: "
            "the pinned version is not in any configured repository") in proc.stdout
    assert "refusing the GPU stack, 1 package(s)" in proc.stdout
    assert versions(installed_root, ["rocm-smi"]) == {"rocm-smi": "5.2.3-2"}
    changed = {p for p, v in snapshot(installed_root).items() if before.get(p) != v}
    assert changed <= {"etc/apt/preferences.d/gpucloud-gpu-stack.pref"}  # the pins go first; nothing installed


def test_refuses_to_move_an_installed_package(installed_root):
    components = {**gpu_stack.load_profile("debian-bookworm-amd")["components"],
                  "smi": {"package": "rocm-smi", "version": "5.2.3-1"}}
    proc, _ = play(installed_root, gpu_stack_profile="debian-bookworm-amd", gpu_stack_components=components)
    assert proc.returncode != 0
    assert ("rocm-smi (smi): pinned 5.2.3-1, installed 5.2.3-2, available 5.2.3-2: installed at another version "
            "and gpu_stack_allow_change is false") in proc.stdout
    assert versions(installed_root, ["rocm-smi"]) == {"rocm-smi": "5.2.3-2"}


def test_repository_change_refused_then_allowed(make_root):
    """unzip is in bookworm and (patched) in bookworm-security: two real versions of one package."""
    root = make_root()
    pin = {"tool": {"package": "unzip", "version": "6.0-28"}}
    proc, _ = play(root, gpu_stack_release="r1", gpu_stack_components=pin, gpu_stack_repositories=[SECURITY])
    assert proc.returncode == 0, failure(proc)
    sources = (root / "etc/apt/sources.list.d/gpucloud-gpu-debian-security.sources").read_text()
    assert "Suites: bookworm-security\n" in sources and f"Signed-By: {SECURITY['signed_by']}\n" in sources
    newer = [v for v in dpkg(root, "apt-cache", "madison", "unzip").split("\n") if "bookworm-security" in v]
    assert newer, "bookworm-security no longer carries unzip"
    version = newer[0].split("|")[1].strip()
    pin = {"tool": {"package": "unzip", "version": version}}

    proc, _ = play(root, gpu_stack_release="r2", gpu_stack_components=pin, gpu_stack_repositories=[SECURITY])
    assert proc.returncode != 0
    assert f"unzip (tool): pinned {version}, installed 6.0-28, available " in proc.stdout
    assert versions(root, ["unzip"]) == {"unzip": "6.0-28"}

    proc, _ = play(root, gpu_stack_release="r2", gpu_stack_components=pin, gpu_stack_repositories=[SECURITY],
                   gpu_stack_allow_change=True)
    assert proc.returncode == 0, failure(proc)
    assert versions(root, ["unzip"]) == {"unzip": version}
    assert "unzip" in dpkg(root, "apt-mark", "showhold").split()
    assert json.loads((root / "etc/gpucloud/gpu-stack.json").read_text())["release"] == "r2"

    proc, _ = play(root, gpu_stack_release="r2", gpu_stack_components=pin)  # repository dropped
    assert proc.returncode == 0, failure(proc)
    assert not (root / "etc/apt/sources.list.d/gpucloud-gpu-debian-security.sources").exists()


def test_preflight_reports_every_problem(tmp_path):
    proc, _ = play(tmp_path, ansible_connection="local", gpu_stack_vendor="nvidia",
                   gpu_stack_profile="debian-bookworm-amd", gpu_stack_cache_valid_time=-1,
                   gpu_stack_record_path="relative.json")
    assert proc.returncode != 0
    for text in ("3 problem(s)", "debian-bookworm-amd is a 'amd' stack, but gpu_stack_vendor is 'nvidia'",
                 "gpu_stack_cache_valid_time must be >= 0", "gpu_stack_record_path must be an absolute path"):
        assert text in proc.stdout, failure(proc)


def test_vendor_none_does_nothing(tmp_path):
    proc, counters = play(tmp_path, ansible_connection="local", gpu_vendor="")
    assert proc.returncode == 0, failure(proc)
    assert counters["changed"] == 0
