"""The job runner in the lab: the API under granian and two RQ workers, started and stopped by pid.

Lab servers are emulated on this machine, so the runner's inventory options make Ansible reach
them with the local connection; against real nodes that option file is simply not set.
"""

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from lab import node_host
from lab.bmc_emulator import CA_ENV, PASSWORD_ENV, PORT_ENV
from lab.fabric_lab import lab_root
from lab.proc import LabError, port_open, read_pid, stop_pid, wait_for
from lab.settings import Settings

WORKERS = 2
LAB_TENANTS = ("acme", "globex", "initech")


def inventory_options_text(s: Settings) -> str:
    """The lab's servers are emulated on this machine (node_host.server_compose)."""
    compose = node_host.server_compose(s)
    return "# Written by lab/runner_service.py: the lab's servers are emulated on this machine.\n" + yaml.safe_dump(
        {"compose": compose}, sort_keys=False)


def inventory_options(s: Settings) -> Path:
    path = s.state / "runner-inventory.yml"
    text = inventory_options_text(s)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def runner_env(s: Settings, base: dict[str, str]) -> dict[str, str]:
    """Cluster stages reach the lab's BMCs with its credential variables and its switches through the fabric
    lab's inventory (written when the fabric lab is up; until then the network stage allocates only)."""
    return base | {
        "GPUCLOUD_API_URL": s.api_url,
        "GPUCLOUD_DATA_DIR": str(s.runner_data),
        "GPUCLOUD_INVENTORY_OPTIONS": str(inventory_options(s)),
        "GPUCLOUD_JOB_ENV": f"{PASSWORD_ENV},{CA_ENV},{PORT_ENV}",
        "GPUCLOUD_FABRIC_INVENTORY": str(lab_root(s) / "inventory.yml"),
    }


def _code_digest(s: Settings) -> str:
    """Restart the runner when its code or catalogue changed since it started."""
    digest = hashlib.sha256()
    for path in sorted([*(s.repo / "runner_api").rglob("*.py"), s.repo / "playbooks" / "catalogue.yml"]):
        if "cli" in path.relative_to(s.repo).parts:  # the client, not the service
            continue
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def api_command(port: int, workers: int = 2, threads: int = 32) -> list[str]:
    """The API under granian (a Rust HTTP server running the WSGI app): a third less CPU per request
    than gunicorn's gthread workers. Threads bound concurrent requests, long SSE streams included."""
    return [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads),
            "--respawn-failed-workers", "--no-access-log", "runner_api.wsgi:app"]


def _pidfiles(s: Settings) -> list[Path]:
    return [s.run / "runner-api.pid", *(s.run / f"runner-worker-{n}.pid" for n in range(WORKERS))]


def ensure_running(s: Settings, env: dict[str, str]) -> bool:
    stamp = s.run / "runner.digest"
    digest = _code_digest(s)
    running = all(read_pid(p) for p in _pidfiles(s)) and port_open(s.api_port)
    if running and stamp.exists() and stamp.read_text() == digest:
        return False
    stop(s)
    s.runner_data.mkdir(parents=True, exist_ok=True, mode=0o700)
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    _spawn(api_command(s.api_port), full_env, s.logs / "runner-api.log", s.run / "runner-api.pid", s.repo)
    for n in range(WORKERS):
        _spawn([sys.executable, "-m", "runner_api.worker", "--name", f"lab-worker-{n}"], full_env,
               s.logs / f"runner-worker-{n}.log", s.run / f"runner-worker-{n}.pid", s.repo)
    wait_for(lambda: port_open(s.api_port), "runner API (granian)", 120, s.logs / "runner-api.log")
    stamp.write_text(digest)
    return True


def _spawn(cmd: list[str], env: dict, log: Path, pidfile: Path | None, cwd: Path) -> None:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True, stdin=subprocess.DEVNULL)
    if pidfile:
        pidfile.write_text(f"{proc.pid}\n")


def stop(s: Settings) -> bool:
    """Each process was started in its own session: stop the whole group, so no server worker
    outlives its master (granian's workers share the port with SO_REUSEPORT and would keep serving)."""
    stopped = []
    for pidfile in _pidfiles(s):
        pid = read_pid(pidfile)
        stopped.append(stop_pid(pidfile, pidfile.stem))
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    return any(stopped)


def bootstrap(s: Settings, env: dict[str, str]) -> str:
    """The lab's platform-admin token (kept 0600 in the state dir) and the lab tenants onboarded."""
    os.environ.update(env)
    from runner_api.principal import Role
    from runner_api.settings import Settings as RunnerSettings
    from runner_api.store import Store
    from runner_api.tenants import TenantStore
    from runner_api.tokens import TokenStore

    redis = Store(RunnerSettings.from_env().redis_url).redis
    tokens, tenants = TokenStore(redis), TenantStore(redis)
    path = s.state / "runner-admin-token"
    token = path.read_text().strip() if path.exists() else ""
    if not token or tokens.lookup(token) is None:
        token, _ = tokens.issue(Role.PLATFORM_ADMIN, None, "lab platform admin", "lab")
        path.touch(mode=0o600)
        path.write_text(token + "\n")
    for slug in LAB_TENANTS:
        if tenants.get(slug) is None:
            tenants.create(slug, 4)
    return token


def check(s: Settings) -> None:
    if not port_open(s.api_port):
        raise LabError(f"runner API is not answering on {s.api_url}; see {s.logs / 'runner-api.log'}")
