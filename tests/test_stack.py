"""The lab stack command: finding Python, idempotent `up`, `down` stopping only its own processes."""

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lab import postgres, workers
from lab.proc import port_open, read_pid

REPO = Path(__file__).resolve().parent.parent
FIND_PYTHON = REPO / "bin" / "find-python"


def lab_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=600)


def test_find_python_finds_312_or_newer():
    proc = subprocess.run([str(FIND_PYTHON)], capture_output=True, text=True, check=True)
    exe = proc.stdout.strip()
    version = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
                             capture_output=True, text=True)
    assert version.stdout.strip() == "True"


def test_find_python_skips_a_broken_shim(tmp_path):
    shim = tmp_path / "python3.12"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "GPUCLOUD_PYTHON": str(shim)}
    proc = subprocess.run([str(FIND_PYTHON)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() != str(shim)


def test_find_python_explains_when_there_is_none(tmp_path):
    if any(Path(p).exists() for p in ("/usr/bin/python3.12", "/usr/bin/python3.13", "/usr/local/bin/python3.12")):
        pytest.skip("this machine has a system Python >= 3.12")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none")}
    proc = subprocess.run([str(FIND_PYTHON)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert "no usable Python >= 3.12 found" in proc.stderr
    assert "GPUCLOUD_PYTHON" in proc.stderr


def test_up_again_is_quick_and_changes_nothing(lab_env):
    proc = lab_cli("up")
    assert proc.returncode == 0, proc.stderr
    for service in ("redis", "postgresql", "netbox"):
        assert any(line.split()[:2] == [service, "ok"] for line in proc.stdout.splitlines()), proc.stdout
    assert "database     kept" in proc.stdout
    assert lab_cli("status").returncode == 0


def test_down_stops_only_the_processes_of_its_own_state_dir(settings, lab_env, tmp_path):
    """A second lab on other ports comes up from the cached dump and goes down by pid."""
    state = tmp_path / "state"
    shutil.copytree(settings.state / "netbox" / "conf", state / "netbox" / "conf")
    other = workers.settings(settings, workers.MAX_WORKERS + 1)  # ports no test worker's lab uses
    ports = {"GPUCLOUD_PG_PORT": str(other.pg_port), "GPUCLOUD_REDIS_PORT": str(other.redis_port),
             "GPUCLOUD_NETBOX_PORT": str(other.netbox_port), "GPUCLOUD_API_PORT": str(other.api_port)}
    env = {"GPUCLOUD_STATE": str(state), **ports}
    started = lab_cli("up", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "database     restored" in started.stdout
    pids = [read_pid(state / "run" / name) for name in ("redis.pid", "gunicorn.pid", "runner-api.pid",
                                                        "runner-worker-0.pid")]
    pids.append(read_pid(postgres.data_dir(replace(settings, state=state)) / "postmaster.pid"))
    assert all(pids)
    stopped = lab_cli("down", env=env)
    assert stopped.returncode == 0, stopped.stderr
    for port in ports.values():
        assert not port_open(int(port))
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    for port in (settings.pg_port, settings.redis_port, settings.netbox_port, settings.api_port):
        assert port_open(port), "the main lab must be untouched"
    assert "nothing was running" in lab_cli("down", env=env).stdout
    if os.geteuid() == 0:
        shutil.rmtree(postgres.data_dir(replace(settings, state=state)).parent)


def test_each_test_worker_gets_a_lab_of_its_own(tmp_path):
    from lab.settings import Settings

    base = Settings(repo=REPO, state=tmp_path / ".state", cache=tmp_path / "cache", pg_port=55432, redis_port=56379,
                    netbox_port=58000)
    assert workers.environment(base, 0) == {} and workers.settings(base, 0) is base
    env = workers.environment(base, 2)
    w = workers.settings(base, 2)
    assert env["GPUCLOUD_STATE"] == str(tmp_path / ".state" / "workers" / "gw2") == str(w.state)
    ports = {"PG": base.pg_port, "REDIS": base.redis_port, "NETBOX": base.netbox_port, "API": base.api_port}
    assert {k: int(env[f"GPUCLOUD_{k}_PORT"]) - v for k, v in ports.items()} == dict.fromkeys(ports, 200)
    assert int(env["GPUCLOUD_SLURM_PORT_BASE"]) == base.slurm_port_base + 2000
    assert env["GPUCLOUD_LAB_BMC_PORT"] == "10445"
    assert env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(w.state / "facts")
    w.state.mkdir(parents=True)
    (w.state.parent / "gw1.old").mkdir()  # not a worker's: left alone
    assert workers.started(base) == [2]
    assert [workers.index(n) for n in (None, "", "gw0", "gw7")] == [0, 0, 0, 7]
    with pytest.raises(ValueError, match="expected gw<N>"):
        workers.index("main")
