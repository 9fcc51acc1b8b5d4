"""Fixtures for the job runner: a runner on its own Redis database, real worker processes.

The lab's own runner (API + two workers) uses Redis db 2; these tests use db 3 and start and kill
their own workers, so crash and fairness tests never disturb the lab or each other.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner_api import create_app
from runner_api.principal import Role
from runner_api.settings import Settings
from runner_api.store import Store

REPO = Path(__file__).resolve().parent.parent
TEST_DB = 3


@pytest.fixture(scope="session")
def runner_settings(lab_env, fleet, tmp_path_factory):
    base = tmp_path_factory.mktemp("runner")
    options = base / "inventory-options.yml"
    options.write_text("compose:\n  ansible_connection: \"'local'\"\n")
    redis_url = lab_env["GPUCLOUD_REDIS_URL"].rsplit("/", 1)[0] + f"/{TEST_DB}"
    Store(redis_url).redis.flushdb()
    return Settings.from_env(redis_url=redis_url, data_dir=base / "data", netbox_url=lab_env["NETBOX_URL"],
                             netbox_token=lab_env["NETBOX_TOKEN"], inventory_options={
                                 "compose": {"ansible_connection": "'local'"}}, inventory_ttl=0,
                             oidc_allow_http_loopback=True)


def runner_env(settings: Settings) -> dict:
    options = settings.data_dir.parent / "inventory-options.yml"
    return {**os.environ, "GPUCLOUD_REDIS_URL": settings.redis_url, "GPUCLOUD_DATA_DIR": str(settings.data_dir),
            "NETBOX_URL": settings.netbox_url, "NETBOX_TOKEN": settings.netbox_token,
            "GPUCLOUD_INVENTORY_OPTIONS": str(options), "GPUCLOUD_CATALOGUE": str(settings.catalogue),
            "GPUCLOUD_HEARTBEAT_TTL": str(settings.heartbeat_ttl),
            "GPUCLOUD_CLUSTER_STAGES": str(settings.cluster_stages), "GPUCLOUD_JOB_ENV": ",".join(settings.job_env)}


@pytest.fixture(scope="session")
def runner_app(runner_settings):
    return create_app(runner_settings)


@pytest.fixture(scope="session")
def runtime(runner_app):
    return runner_app.extensions["gpucloud"]


@pytest.fixture
def client(runner_app):
    return runner_app.test_client()


@pytest.fixture(scope="session")
def tenants(runtime):
    for slug in ("acme", "globex", "initech"):
        if runtime.tenants.get(slug) is None:
            runtime.tenants.create(slug, 4)
    return ("acme", "globex", "initech")


@pytest.fixture(scope="session")
def tokens(runtime, tenants):
    """Bearer headers: platform-admin and every tenant role of acme and globex."""
    headers = {}

    def issue(key, role, tenant):
        token, _ = runtime.tokens.issue(role, tenant, f"test {key}", "tests")
        headers[key] = {"Authorization": f"Bearer {token}"}

    issue("admin", Role.PLATFORM_ADMIN, None)
    for tenant in ("acme", "globex"):
        for role in (Role.TENANT_ADMIN, Role.TENANT_OPERATOR, Role.TENANT_VIEWER):
            issue(f"{tenant}-{role.removeprefix('tenant-')}", role, tenant)
    return headers


@pytest.fixture(scope="session")
def tenant_nodes(runtime, tenants):
    return {t: sorted(runtime.inventory.nodes(t)) for t in ("acme", "globex")}


class Workers:
    """Real `python -m runner_api.worker` processes, each in its own session so tests can kill them."""

    def __init__(self, settings: Settings, log_dir: Path):
        self.settings = settings
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, count: int = 1) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            # Unique names: a SIGKILLed worker's registration outlives it in Redis for a while.
            name = f"test-worker-{os.getpid()}-{time.monotonic_ns() % 10**9}"
            log = (self.log_dir / f"{name}.log").open("ab")
            proc = subprocess.Popen([sys.executable, "-m", "runner_api.worker", "--name", name],
                                    env=runner_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
                                    cwd=REPO, start_new_session=True)
            self.procs.append(proc)
            started.append(proc)
        return started

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


@pytest.fixture
def workers(runner_settings, tmp_path):
    pool = Workers(runner_settings, tmp_path)
    yield pool
    pool.stop()


def wait_job(client, headers, job_id, statuses=("successful", "failed", "canceled", "timeout"), timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")


def submit(client, headers, body, status=201):
    response = client.post("/v1/jobs", json=body, headers=headers)
    assert response.status_code == status, response.json
    return response.json
