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

import pytest

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


# Tests that share an expensive session fixture run on one worker, so it is built once (and its files are not
# written by two workers at once): fixture -> xdist group.
SHARED_FIXTURES = {"built_image": "image"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Parallel runs (`make test TEST_WORKERS=N`: --dist loadgroup) keep each test file on one worker, so its module
    fixtures (a Slurm cluster, a fabric) are set up once, and merge the files that share an expensive session
    fixture."""
    for item in items:
        shared = sorted(SHARED_FIXTURES[f] for f in item.fixturenames if f in SHARED_FIXTURES)
        item.add_marker(pytest.mark.xdist_group(shared[0] if shared else item.path.name))


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
