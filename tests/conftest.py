"""Fixtures that bring up the real lab stack (PostgreSQL, Redis, NetBox) and a demo fleet.

Restoring a cached dump takes seconds, so tests that change NetBox restore the fleet after
themselves instead of sharing mutated state.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import budget
import pytest
from xdist.scheduler import LoadScopeScheduling

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox
from lab import netbox_server, workers
from lab.fleet_plan import plan
from lab.seed import ensure_fleet, restore
from lab.settings import load
from lab.stack import up

# A pytest-xdist worker gets a lab of its own (lab/workers.py): set before any fixture reads a setting.
workers.configure()
pytest_plugins = ["runner_support", "image_support", "budget"]

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLEET_NODES = 32


def pytest_configure(config):
    """The controller of a parallel run brings worker 0's lab up and seeds it once, before any worker starts: the
    machine-wide caches (virtualenvs, lab secrets, the migrated and fleet dumps) are then built once, and every
    worker's lab only restores them."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from lab.seed import fleet_dump

        s = load()
        env = up(s)
        if not fleet_dump(s, FLEET_NODES).exists():
            ensure_fleet(s, env, FLEET_NODES)


# Parallel runs (`make test`: pytest-xdist) schedule whole groups: a test file, or the files named here, which share
# an expensive session fixture (built once, its files written by one worker at a time). The image tests and those
# that unpack its cached base into roots of their own share one: apart, their chroots and apt runs met.
GROUPS = dict.fromkeys(["test_golden_image.py", "test_image_boot.py", "test_gpu_stack.py", "test_os_tuning.py",
                        "test_bench_image.py"], "image")
SHARED_FIXTURES = {"built_image": "image", "base_tarball": "image", "image_output": "image"}


def group_of(nodeid: str) -> str:
    """tests/test_x.py::test_y[...] -> its file's group: the GROUPS entry, else the file itself."""
    path = nodeid.split("::", 1)[0]
    return GROUPS.get(Path(path).name, path)


class GroupScheduling(LoadScopeScheduling):
    """xdist's loadscope with GROUPS for scopes: a group's tests run on one worker, so its module fixtures (a Slurm
    cluster, a fabric, the image) are set up once. (xdist's own --dist loadgroup marks nodeids in a way pytest 9
    no longer keeps, so it schedules test by test.)"""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` (--dist loadgroup) and a plain `pytest -n N` (--dist load) both schedule by GROUPS."""
    if config.getvalue("dist") in ("load", "loadgroup"):
        return GroupScheduling(config, log)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Check every user of a shared fixture is in its group; in a worker of a parallel run, put the longest groups
    first (by the last run's times, tests/budget.py), so no long one is handed out last."""
    astray = sorted({f"{item.path.name} uses {fixture} (group {group!r})" for item in items
                     for fixture, group in SHARED_FIXTURES.items()
                     if fixture in item.fixturenames and group_of(item.nodeid) != group})
    if astray:
        raise pytest.UsageError("tests/conftest.py GROUPS: " + "; ".join(astray) + ": add the file to its group")
    if not hasattr(config, "workerinput"):
        return
    cost = budget.group_seconds({item.path.name: group_of(item.nodeid) for item in items})
    items.sort(key=lambda item: -cost.get(group_of(item.nodeid), 0.0))  # stable: a group's tests keep their order


@pytest.fixture(scope="session")
def settings():
    return load()


@pytest.fixture(scope="session")
def lab_env(settings):
    env = up(settings)
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def fleet_plan():
    return plan(FLEET_NODES)


@pytest.fixture(scope="session")
def fleet(settings, lab_env):
    ensure_fleet(settings, lab_env, FLEET_NODES)
    return plan(FLEET_NODES)


@pytest.fixture
def restore_fleet_after(settings, lab_env, fleet):
    """For tests that change NetBox: put the demo fleet back afterwards."""
    yield
    ensure_fleet(settings, lab_env, FLEET_NODES)


@pytest.fixture
def empty_netbox(settings, lab_env, fleet):
    """A migrated NetBox with no data model and no fleet; the fleet is restored afterwards."""
    restore(settings, netbox_server.migrated_dump(settings))
    yield
    ensure_fleet(settings, lab_env, FLEET_NODES)


@pytest.fixture(scope="session")
def nb(lab_env):
    return NetBox(lab_env["NETBOX_URL"], lab_env["NETBOX_TOKEN"])


def run(cmd, env=None, check=False, cwd=REPO):
    """Run an Ansible command line from the repository root with the lab's environment."""
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          check=check)


def wait_until(predicate, what: str, timeout: float = 60.0, interval: float = 0.2):
    """Poll until predicate() is true and return what it returned; fail naming what did not happen (a timeout,
    never a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(interval)
    return result


def plain(value):
    """ansible-inventory marks inventory strings unsafe ({"__ansible_unsafe": ...}); compare plain values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def ansible_inventory(inventory="inventory/fleet.gpucloud_netbox.yml", tenant=None, env=None):
    proc = run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
               env={"GPUCLOUD_TENANT": tenant or "", **(env or {})})
    data = plain(json.loads(proc.stdout)) if proc.returncode == 0 else None
    return proc, data


def ansible_playbook(playbook, *args, env=None):
    return run([str(BIN / "ansible-playbook"), playbook, *args], env=env)


def recaps(proc) -> dict:
    """The PLAY RECAP counters per host."""
    out = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^(\S+)\s+:\s+(ok=.*)$", line)
        if match:
            out[match.group(1)] = {k: int(v) for k, v in (p.split("=") for p in match.group(2).split())}
    assert out, f"no recap in output:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    return out


def recap(proc) -> dict:
    """The PLAY RECAP counters of localhost."""
    return recaps(proc)["localhost"]
