"""Queued jobs survive a Redis restart (AOF); retention prunes old finished jobs and nothing else."""

import subprocess
import time
from dataclasses import replace

import pytest
from runner_support import submit

from runner_api import create_app, store
from runner_api.jobs import JobStatus
from runner_api.principal import Role
from runner_api.retention import prune
from runner_api.store import Store

pytestmark = pytest.mark.netbox


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(directory, port):
    subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory),
                    "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "yes",
                    "--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log")],
                   check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout == "PONG\n":
            return
        time.sleep(0.1)
    raise AssertionError("private Redis did not start")


def test_queued_jobs_survive_a_redis_restart(runner_settings, tenant_nodes, tmp_path):
    port = free_port()
    start_redis(tmp_path, port)
    try:
        settings = replace(runner_settings, redis_url=f"redis://127.0.0.1:{port}/0")
        app = create_app(settings)
        rt = app.extensions["gpucloud"]
        rt.tenants.create("acme", 4)
        token, _ = rt.tokens.issue(Role.TENANT_OPERATOR, "acme", "durability", "tests")
        headers = {"Authorization": f"Bearer {token}"}
        ids = [submit(app.test_client(), headers, {"playbook": "node_healthcheck",
                                                   "limit": tenant_nodes["acme"][:1]})["id"] for _ in range(3)]
        # SHUTDOWN flushes the AOF; a crash would lose at most the last second (appendfsync everysec).
        subprocess.run(["redis-cli", "-p", str(port), "shutdown"], check=False)
        time.sleep(0.5)
        start_redis(tmp_path, port)
        redis = Store(settings.redis_url).redis
        assert redis.lrange(f"rq:queue:{store.queue_name('acme')}", 0, -1) == ids
        assert all(redis.hget(store.job_key(i), "status") == "queued" for i in ids)
        assert create_app(settings).test_client().get(f"/v1/jobs/{ids[0]}", headers=headers).status_code == 200
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], check=False, capture_output=True)


def test_retention_prunes_only_old_finished_jobs(client, tokens, tenant_nodes, runtime, runner_settings):
    body = {"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1]}
    old_done, old_queued, recent_done = (submit(client, tokens["acme-operator"], body)["id"] for _ in range(3))
    for job_id in (old_done, recent_done):
        client.post(f"/v1/jobs/{job_id}/cancel", headers=tokens["acme-operator"])
        (runner_settings.jobs_dir / job_id).mkdir(parents=True, exist_ok=True)
    long_ago = time.time() - (runner_settings.retention_hours + 1) * 3600
    for job_id in (old_done, old_queued):
        runtime.store.redis.zadd(store.ALL_JOBS, {job_id: long_ago})
    try:
        pruned = prune(runner_settings, runtime.store.redis)
        assert old_done in pruned and old_queued not in pruned and recent_done not in pruned
        assert runtime.jobs.get(old_done) is None and not (runner_settings.jobs_dir / old_done).exists()
        assert not runtime.store.redis.exists(store.job_events(old_done))
        assert runtime.jobs.get(old_queued)["status"] == JobStatus.QUEUED
        assert (runner_settings.jobs_dir / recent_done).exists()
    finally:
        client.post(f"/v1/jobs/{old_queued}/cancel", headers=tokens["acme-operator"])
