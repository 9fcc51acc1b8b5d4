"""Jobs run by real worker processes with real ansible-runner runs of the catalogued playbook."""

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest
from runner_support import submit, wait_job

from runner_api import store
from runner_api.admission import Admission
from runner_api.jobs import JobStatus

pytestmark = [pytest.mark.netbox, pytest.mark.slow]


def sse_events(client, headers, job_id, last_event_id=None):
    extra = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    response = client.get(f"/v1/jobs/{job_id}/events", headers=headers | extra, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events, buffer = [], ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and line[0] != ":")
            if "data" in fields:
                events.append((fields["id"], json.loads(fields["data"])))
                if events[-1][1]["event"] == "job_end":
                    response.close()
                    return events
    return events


def processes(pattern: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if pattern in line]


def wait_for_event(client, headers, job_id, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = client.get(f"/v1/jobs/{job_id}/events?limit=1000", headers=headers).json["items"]
        if any(predicate(e) for e in items):
            return items
        time.sleep(0.2)
    raise AssertionError(f"no matching event for job {job_id}")


def test_job_runs_streams_and_leaves_a_journal(client, tokens, tenant_nodes, workers, nb):
    workers.start(1)
    nodes = tenant_nodes["acme"][:2]
    headers = tokens["acme-operator"] | {"X-Correlation-ID": "journal-test-1"}
    job = submit(client, headers, {"playbook": "node_healthcheck", "limit": nodes,
                                   "variables": {"node_healthcheck_note": "ticket 42", "node_healthcheck_min_gpus": 1}})
    events = sse_events(client, tokens["acme-viewer"], job["id"])
    names = [e["event"] for _, e in events]
    assert names[0] == "job_start" and names[-1] == "job_end" and "playbook_on_stats" in names
    assert events[-1][1]["status"] == "successful"
    assert all(e["correlation_id"] == "journal-test-1" for _, e in events)
    assert {e["host"] for _, e in events if e["event"] == "runner_on_ok"} == set(nodes)
    assert any("ticket 42" in e.get("stdout", "") for _, e in events)
    done = wait_job(client, headers, job["id"])
    assert done["status"] == "successful" and done["changed"] == 0 and done["rc"] == 0
    assert set(done["stats"]) == set(nodes) and all(s["failed"] == 0 for s in done["stats"].values())
    assert done["journal"] == "journal entries on 2 devices"
    for node in nodes:
        device = nb.get("dcim/devices", name=node)["results"][0]
        entries = nb.get("extras/journal-entries", assigned_object_type="dcim.device",
                         assigned_object_id=device["id"])["results"]
        mine = [e for e in entries if job["id"] in e["comments"]]
        assert mine and mine[0]["kind"]["value"] == "success"
        assert "node_healthcheck" in mine[0]["comments"] and "journal-test-1" in mine[0]["comments"]
    # SSE resumes after Last-Event-ID; the JSON form pages through the same events.
    middle = events[len(events) // 2][0]
    resumed = sse_events(client, tokens["acme-viewer"], job["id"], last_event_id=middle)
    assert [i for i, _ in resumed] == [i for i, _ in events if i > middle]
    paged, after = [], None
    while True:
        page = client.get(f"/v1/jobs/{job['id']}/events?limit=7" + (f"&after={after}" if after else ""),
                          headers=tokens["acme-viewer"]).json
        paged += [e["id"] for e in page["items"]]
        after = page["next_after"]
        if not after:
            break
    assert paged == [i for i, _ in events]


def test_hosts_all_sees_only_the_tenants_nodes(client, tokens, tenant_nodes, workers):
    workers.start(1)
    job = submit(client, tokens["globex-operator"], {"playbook": "node_healthcheck"})
    done = wait_job(client, tokens["globex-operator"], job["id"])
    assert done["status"] == "successful"
    assert set(done["stats"]) == set(tenant_nodes["globex"])
    assert not set(done["stats"]) & set(tenant_nodes["acme"])


def test_unsafe_variables_are_printed_not_templated(client, tokens, tenant_nodes, workers, runtime):
    """Even input that slipped past validation reaches Ansible as !unsafe data."""
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1],
                                                     "variables": {"node_healthcheck_note": "placeholder"}})
    payload = "{{ lookup('pipe', 'id') }}"
    runtime.jobs.update(job["id"], variables={"node_healthcheck_note": payload})
    workers.start(1)
    done = wait_job(client, tokens["acme-operator"], job["id"])
    assert done["status"] == "successful"
    output = "".join(e.get("stdout", "") for e in client.get(
        f"/v1/jobs/{job['id']}/events?limit=1000", headers=tokens["acme-operator"]).json["items"])
    # The debug callback prints YAML: quotes doubled, long lines wrapped.
    assert "{{ lookup(''pipe''," in output and "uid=" not in output


def test_cancel_really_stops_ansible(client, tokens, tenant_nodes, workers, runtime):
    workers.start(1)
    node = tenant_nodes["acme"][2]
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": [node],
                                                     "variables": {"node_healthcheck_soak_seconds": 613}})
    wait_for_event(client, tokens["acme-operator"], job["id"],
                   lambda e: e["event"] == "runner_on_start" and e.get("task") == "Soak the node")
    deadline = time.monotonic() + 20
    while not processes("sleep 613") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes("sleep 613")
    started = time.monotonic()
    response = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tokens["acme-operator"])
    assert response.status_code == 202
    done = wait_job(client, tokens["acme-operator"], job["id"], timeout=30)
    assert done["status"] == "canceled" and done["reason"].startswith("canceled by token:")
    assert time.monotonic() - started < 15
    assert not processes("sleep 613"), "the soak process survived the cancel"
    assert not processes(f"jobs/{job['id']}")
    assert runtime.store.redis.get(store.node_lock(node)) is None
    assert not runtime.store.redis.sismember(store.running("acme"), job["id"])


def test_timeout_stops_the_run(client, tokens, tenant_nodes, workers):
    workers.start(1)
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1],
                                                     "timeout": 4, "variables": {"node_healthcheck_soak_seconds": 617}})
    done = wait_job(client, tokens["acme-operator"], job["id"], timeout=60)
    assert done["status"] == "timeout" and done["reason"] == "timed out after 4 s"
    assert not processes("sleep 617")


def test_node_lock_makes_the_second_job_wait(client, tokens, tenant_nodes, workers, runtime):
    workers.start(2)
    node = tenant_nodes["acme"][3]
    first = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": [node],
                                                       "variables": {"node_healthcheck_soak_seconds": 6}})
    wait_job(client, tokens["acme-operator"], first["id"], statuses=("running",))
    second = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": [node]})
    deadline = time.monotonic() + 10
    waiting = None
    while time.monotonic() < deadline and not waiting:
        waiting = client.get(f"/v1/jobs/{second['id']}", headers=tokens["acme-operator"]).json["waiting"]
        time.sleep(0.2)
    assert waiting == f"node {node} is locked by job {first['id']}"
    assert client.get(f"/v1/jobs/{second['id']}", headers=tokens["acme-operator"]).json["status"] == "queued"
    first_done = wait_job(client, tokens["acme-operator"], first["id"])
    second_done = wait_job(client, tokens["acme-operator"], second["id"])
    assert second_done["status"] == "successful" and second_done["started_at"] >= first_done["finished_at"] - 0.5


def test_tenant_concurrency_limit(client, tokens, tenant_nodes, workers, runtime):
    runtime.tenants.update("globex", 1)
    try:
        workers.start(2)
        nodes = tenant_nodes["globex"]
        first = submit(client, tokens["globex-operator"], {"playbook": "node_healthcheck", "limit": nodes[:1],
                                                             "variables": {"node_healthcheck_soak_seconds": 5}})
        wait_job(client, tokens["globex-operator"], first["id"], statuses=("running",))
        second = submit(client, tokens["globex-operator"], {"playbook": "node_healthcheck", "limit": nodes[1:2]})
        time.sleep(2)
        view = client.get(f"/v1/jobs/{second['id']}", headers=tokens["globex-operator"]).json
        assert view["status"] == "queued"
        assert view["waiting"] == "tenant globex is at its concurrency limit (1 running)"
        assert wait_job(client, tokens["globex-operator"], second["id"])["status"] == "successful"
    finally:
        runtime.tenants.update("globex", 4)


def test_a_thousand_queued_jobs_do_not_delay_another_tenants_first_job(client, tokens, tenant_nodes, runtime):
    """Admission order, one slot at a time, with acme's backlog queued before globex's first job."""
    runtime.tenants.update("acme", 1000)
    admission = Admission(runtime.store.redis, 4)
    try:
        pipe_jobs = [submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck",
                                                              "limit": [tenant_nodes["acme"][i % 8]]})["id"]
                     for i in range(1000)]
        # Node locks would hold acme back; release after each pick so only fairness decides.
        globex_job = submit(client, tokens["globex-operator"], {"playbook": "node_healthcheck",
                                                                "limit": tenant_nodes["globex"][:1]})["id"]
        order = []
        for _ in range(3):
            tenant, job_id = admission.next_job("fairness-test")
            order.append(job_id)
            admission.release(tenant, job_id)
            runtime.jobs.update(job_id, status=JobStatus.CANCELED)
        assert globex_job in order[:2], order
    finally:
        runtime.tenants.update("acme", 4)
        for job_id in pipe_jobs:
            client.post(f"/v1/jobs/{job_id}/cancel", headers=tokens["acme-operator"])


def test_real_workers_serve_tenants_fairly(client, tokens, tenant_nodes, workers):
    backlog = [submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck",
                                                         "limit": [tenant_nodes["acme"][i % 8]]})["id"]
               for i in range(12)]
    first = submit(client, tokens["globex-operator"], {"playbook": "node_healthcheck",
                                                        "limit": tenant_nodes["globex"][:1]})["id"]
    workers.start(1)
    done = wait_job(client, tokens["globex-operator"], first)
    acme_started_before = [j for j in backlog if (client.get(f"/v1/jobs/{j}", headers=tokens["acme-operator"]).json
                                                  ["started_at"] or 1e12) < done["started_at"]]
    assert len(acme_started_before) <= 1
    for job_id in backlog:
        client.post(f"/v1/jobs/{job_id}/cancel", headers=tokens["acme-operator"])


def test_sigkilled_worker_fails_the_job_and_releases_its_locks(client, tokens, tenant_nodes, workers, runtime):
    (worker,) = workers.start(1)
    node = tenant_nodes["acme"][4]
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": [node],
                                                     "variables": {"node_healthcheck_soak_seconds": 619}})
    behind = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": [node]})
    wait_for_event(client, tokens["acme-operator"], job["id"],
                   lambda e: e["event"] == "runner_on_start" and e.get("task") == "Soak the node")
    os.kill(worker.pid, signal.SIGKILL)
    done = wait_job(client, tokens["acme-operator"], job["id"], timeout=30)
    assert done["status"] == "failed" and f"worker process {worker.pid} died" in done["reason"]
    assert runtime.store.redis.get(store.node_lock(node)) != job["id"]
    assert not processes("sleep 619")
    # Nothing lost: the job queued behind it runs on the next worker.
    workers.start(1)
    assert wait_job(client, tokens["acme-operator"], behind["id"])["status"] == "successful"


def test_lost_machine_is_reaped_by_another_worker(client, tokens, tenant_nodes, workers, runtime):
    """Worker and work horse gone at once (machine loss): the heartbeat expires, another worker settles it."""
    (worker,) = workers.start(1)
    node = tenant_nodes["acme"][5]
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": [node],
                                                     "variables": {"node_healthcheck_soak_seconds": 623}})
    wait_for_event(client, tokens["acme-operator"], job["id"],
                   lambda e: e["event"] == "runner_on_start" and e.get("task") == "Soak the node")
    horse_tree = [worker.pid]
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout.split()[2:]
    pairs = list(zip(out[::2], out[1::2], strict=True))
    for pid, ppid in pairs * 6:
        if int(ppid) in horse_tree and int(pid) not in horse_tree:
            horse_tree.append(int(pid))
    for pid in horse_tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["pkill", "-9", "-f", "sleep 623"], check=False)
    workers.start(1)
    done = wait_job(client, tokens["acme-operator"], job["id"], timeout=40)
    assert done["status"] == "failed" and "stopped heartbeating" in done["reason"]
    assert runtime.store.redis.get(store.node_lock(node)) is None
    assert not runtime.store.redis.sismember(store.running("acme"), job["id"])


def test_metrics_report_outcomes_and_durations(client, tokens):
    text = client.get("/metrics", headers=tokens["admin"]).get_data(as_text=True)
    assert 'gpucloud_jobs_total{playbook="node_healthcheck",status="successful",tenant="acme"}' in text
    assert 'gpucloud_job_duration_seconds_bucket{le="+Inf",playbook="node_healthcheck"}' in text
    assert 'gpucloud_jobs_total{playbook="node_healthcheck",status="canceled",tenant="acme"}' in text
