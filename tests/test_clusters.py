"""Clusters against the real lab: quota check, topology-aware placement, reservation in NetBox, stage
jobs run by real workers, alerts (API, metrics, a signed webhook), cost, DELETE, and no double booking
under concurrent requests.

The demo fleet's free nodes are 2 H200 servers (leaf-dc2-r01, one NVLink domain each) and 4 MI300X
servers (leaf-dc1-r03). Clusters here run one quick stage (the node health check) so the chain is
exercised end to end without the slow BIOS and image stages, which have tests of their own.
"""

import dataclasses
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from runner_support import Workers

from conftest import FLEET_NODES, wait_until
from lab import bmc_emulator
from lab.fleet_plan import plan
from lab.seed import ensure_fleet
from runner_api import create_app
from runner_api.principal import Role

pytestmark = pytest.mark.usefixtures("restore_fleet_after_module")
QUOTA = {"quota_gpus": 40, "quota_cpus": 4096, "quota_memory_gb": 65536, "quota_storage_tb": 500,
         "quota_gpus_by_model": {}, "quota_alert_thresholds": None, "projects": None}
STAGES = """\
kinds:
  slurm: &check
    - {stage: cluster, playbook: cluster_check}
  k8s: *check
delete: []
"""
SECRET = "webhook-test-secret"


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers.get("X-Gpucloud-Signature"), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def restore_fleet_after_module(settings, lab_env, fleet):
    yield
    ensure_fleet(settings, lab_env, FLEET_NODES)


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


@pytest.fixture(scope="module")
def cluster_settings(runner_settings, tmp_path_factory, webhook):
    stages = tmp_path_factory.mktemp("stages") / "clusters.yml"
    stages.write_text(STAGES)
    return dataclasses.replace(runner_settings, cluster_stages=stages, alert_webhook_url=webhook,
                               alert_webhook_secret=SECRET)


@pytest.fixture(scope="module")
def app(cluster_settings):
    return create_app(cluster_settings)


@pytest.fixture(scope="module")
def rt(app):
    return app.extensions["gpucloud"]


@pytest.fixture(scope="module")
def qa(rt, nb):
    """Two test tenants in NetBox and the runner, each with an admin and a viewer token."""
    headers = {}
    for slug in ("qa-one", "qa-two"):
        found = nb.list("tenancy/tenants", slug=slug)
        if not found:
            nb.create("tenancy/tenants", [{"name": slug, "slug": slug, "custom_fields": QUOTA}])
        if rt.tenants.get(slug) is None:
            rt.tenants.create(slug, 4)
        for role in (Role.TENANT_ADMIN, Role.TENANT_VIEWER):
            token, _ = rt.tokens.issue(role, slug, "cluster tests", "tests")
            headers[f"{slug}-{role.removeprefix('tenant-')}"] = {"Authorization": f"Bearer {token}"}
    token, _ = rt.tokens.issue(Role.PLATFORM_ADMIN, None, "cluster tests", "tests")
    headers["admin"] = {"Authorization": f"Bearer {token}"}
    return headers


@pytest.fixture
def quota(nb, qa):
    """Set a tenant's quota custom fields for one test; both test tenants get the defaults back after."""
    def set_quota(slug, **fields):
        tenant = nb.list("tenancy/tenants", slug=slug)[0]
        nb.update("tenancy/tenants", [{"id": tenant["id"], "custom_fields": QUOTA | fields}])
    yield set_quota
    for slug in ("qa-one", "qa-two"):
        set_quota(slug)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cluster_workers(cluster_settings, tmp_path):
    pool = Workers(cluster_settings, tmp_path)
    yield pool
    pool.stop()


def devices(nb, names):
    found = nb.list("dcim/devices", name=list(names), fields="id,name,tenant,status,cluster,custom_fields")
    return {d["name"]: d for d in found}


def free_servers(nb):
    return sorted(d["name"] for d in nb.list("dcim/devices", role="gpu-server", status="active",
                                              tenant_id="null", fields="name,cluster") if not d["cluster"])


def delete_all(client, headers, slug):
    for cluster in client.get("/v1/clusters", headers=headers).json["items"]:
        if cluster["status"] != "deleted":
            client.delete(f"/v1/clusters/{cluster['id']}", headers=headers)


AMD_LEAF = {"kind": "slurm", "gpus": 16, "vendor": "amd", "interconnect": "leaf"}


def test_dry_run_places_and_prices_without_reserving(client, qa, nb):
    before = free_servers(nb)
    response = client.post("/v1/clusters", json=AMD_LEAF | {"name": "dry", "dry_run": True},
                           headers=qa["qa-one-admin"])
    assert response.status_code == 200, response.json
    placed = response.json["placement"]
    assert placed["model"] == "MI300X" and placed["level"] == "leaf" and placed["domain"] == "leaf-dc1-r03"
    assert len(placed["nodes"]) == 2 and placed["gpus"] == 16
    assert response.json["estimate"]["hourly"] == 52.0 and response.json["estimate"]["currency"] == "USD"
    assert free_servers(nb) == before


@pytest.mark.parametrize(("request_body", "phrases"), [
    ({"gpus": 16, "model": "H200-SXM-141GB", "interconnect": "nvlink"},
     ["16 H200-SXM-141GB GPUs", "one NVLink domain", "largest free domain has 8"]),
    ({"nodes": 5, "vendor": "AMD", "interconnect": "leaf"}, ["needs 5 MI300X nodes", "only 4"]),
    ({"nodes": 3, "model": "H200-SXM-141GB", "interconnect": "leaf"}, ["needs 3", "only 2"]),
    ({"gpus": 8, "model": "B200-SXM-180GB"}, ["B200"]),
    ({"gpus": 8, "vendor": "AMD", "ib": True, "min_gpu_memory_gb": 500}, ["500"]),
])
def test_unplaceable_requests_say_why(client, qa, request_body, phrases):
    response = client.post("/v1/clusters", json={"name": "nope", "kind": "k8s"} | request_body,
                           headers=qa["qa-one-admin"])
    assert response.status_code == 409, response.json
    assert response.json["title"] == "No capacity"
    for phrase in phrases:
        assert phrase in response.json["detail"], response.json["detail"]


def test_bad_input_names_every_field(client, qa):
    response = client.post("/v1/clusters", json={"name": "Bad Name", "kind": "lsf", "gpus": 0,
                                                 "interconnect": "rack"}, headers=qa["qa-one-admin"])
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert {"name", "kind", "gpus", "interconnect"} <= fields
    both = client.post("/v1/clusters", json={"name": "x", "kind": "k8s", "gpus": 8, "nodes": 1},
                       headers=qa["qa-one-admin"])
    assert both.status_code == 422 and both.json["errors"][0]["field"] == "gpus"


def test_quota_refusal_names_quota_request_and_left_and_alerts(client, qa, quota, rt):
    quota("qa-two", quota_gpus=8)
    Hook.received.clear()
    response = client.post("/v1/clusters", json=AMD_LEAF | {"name": "big"}, headers=qa["qa-two-admin"])
    assert response.status_code == 409, response.json
    assert response.json["title"] == "Quota exceeded"
    assert "tenant qa-two quota gpus: requested 16 GPUs, 0 of 8 in use, 8 left" in response.json["detail"]
    alerts = client.get("/v1/tenants/qa-two/alerts", headers=qa["qa-two-viewer"]).json["items"]
    assert alerts[0]["kind"] == "refused" and "requested 16 GPUs" in alerts[0]["message"]
    signature, body = Hook.received[-1]
    assert signature == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert json.loads(body)["alert"]["tenant"] == "qa-two"
    by_model = client.post("/v1/clusters", json=AMD_LEAF | {"name": "big", "gpus": 8},
                           headers=qa["qa-one-admin"])
    assert by_model.status_code in (200, 202)  # qa-one has room; its cluster is cleaned up below
    delete_all(client, qa["qa-one-admin"], "qa-one")


def test_cluster_lifecycle_reserve_provision_alert_cost_delete(client, qa, quota, nb, cluster_workers):
    quota("qa-one", quota_gpus=20, projects={"vision": {"description": "CV", "quota": {"gpus": 16}}})
    Hook.received.clear()
    cluster_workers.start(1)
    response = client.post("/v1/clusters", json=AMD_LEAF | {"name": "train", "project": "vision"},
                           headers=qa["qa-one-admin"])
    assert response.status_code == 202, response.json
    cluster = response.json
    assert cluster["status"] == "provisioning" and cluster["estimate"]["hourly"] == 52.0
    reserved = devices(nb, cluster["nodes"])
    for device in reserved.values():
        assert device["tenant"]["slug"] == "qa-one" and device["status"]["value"] == "staged"
        assert device["cluster"]["id"] == cluster["netbox_cluster_id"]
        assert device["custom_fields"]["project"] == "vision"
    ready = wait_until(lambda: _status(client, qa, cluster["id"], "ready", "failed"), "cluster ready", 180)
    assert ready["status"] == "ready", ready
    assert [s["status"] for s in ready["stages"]] == ["successful"]
    assert all(d["status"]["value"] == "active" for d in devices(nb, cluster["nodes"]).values())

    report = client.get("/v1/tenants/qa-one/quota", headers=qa["qa-one-viewer"]).json
    assert report["usage"]["gpus"] == 16 and report["usage"]["gpus_by_model"] == {"MI300X": 16}
    assert {"resource": "gpus", "limit": 20, "used": 16, "left": 4, "percent": 80.0} in report["quota"]
    assert report["projects"]["vision"]["quota"][0]["percent"] == 100.0
    tenant = nb.list("tenancy/tenants", slug="qa-one")[0]["custom_fields"]
    assert tenant["usage_gpus"] == 16 and tenant["usage_gpus_by_model"] == {"MI300X": 16}
    alerts = client.get("/v1/tenants/qa-one/alerts", headers=qa["qa-one-viewer"]).json["items"]
    fired = {(a["scope"], a["threshold"]) for a in alerts if a["kind"] == "threshold"}
    assert ("tenant qa-one", 80) in fired and ("project qa-one/vision", 100) in fired
    assert len(Hook.received) >= 2
    metrics = client.get("/metrics", headers=qa["admin"]).data.decode()
    assert 'gpucloud_quota_used{project="tenant",resource="gpus",tenant="qa-one"} 16.0' in metrics
    cost = client.get("/v1/tenants/qa-one/cost", headers=qa["qa-one-viewer"]).json
    assert cost["hourly"] == 52.0 and cost["hourly_by_project"] == {"vision": 52.0}

    over = client.post("/v1/clusters", json=AMD_LEAF | {"name": "more", "gpus": 8, "project": "vision"},
                       headers=qa["qa-one-admin"])
    assert over.status_code == 409 and "project qa-one/vision quota gpus" in over.json["detail"]

    gone = client.delete(f"/v1/clusters/{cluster['id']}", headers=qa["qa-one-admin"])
    assert gone.status_code == 202 and gone.json["status"] == "deleted"
    for device in devices(nb, cluster["nodes"]).values():
        assert device["tenant"] is None and device["cluster"] is None and device["status"]["value"] == "active"
    assert client.get("/v1/tenants/qa-one/quota", headers=qa["qa-one-viewer"]).json["usage"]["gpus"] == 0


def _status(client, qa, cluster_id, *wanted):
    cluster = client.get(f"/v1/clusters/{cluster_id}", headers=qa["qa-one-admin"]).json
    return cluster if cluster["status"] in wanted else None


def test_tenant_cannot_see_or_delete_another_tenants_cluster(client, qa):
    mine = client.post("/v1/clusters", json={"name": "private", "kind": "k8s", "nodes": 1, "vendor": "NVIDIA"},
                       headers=qa["qa-one-admin"])
    assert mine.status_code == 202, mine.json
    cluster_id = mine.json["id"]
    other = qa["qa-two-admin"]
    assert client.get(f"/v1/clusters/{cluster_id}", headers=other).status_code == 404
    assert client.delete(f"/v1/clusters/{cluster_id}", headers=other).status_code == 404
    assert cluster_id not in {c["id"] for c in client.get("/v1/clusters", headers=other).json["items"]}
    assert client.get("/v1/tenants/qa-one/quota", headers=other).status_code == 404
    assert client.get("/v1/tenants/qa-one/alerts", headers=other).status_code == 404
    assert client.post("/v1/clusters", json={"name": "v", "kind": "k8s", "nodes": 1},
                       headers=qa["qa-two-viewer"]).status_code == 403
    delete_all(client, qa["qa-one-admin"], "qa-one")


def test_twenty_concurrent_requests_never_double_book(app, qa, nb, rt):
    free = free_servers(nb)
    results = []

    def ask(index):
        tenant = ("qa-one", "qa-two")[index % 2]
        response = app.test_client().post("/v1/clusters", json={"name": f"race-{index}", "kind": "k8s", "nodes": 1},
                                          headers=qa[f"{tenant}-admin"])
        results.append((tenant, response.status_code, response.json))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if r[1] == 202]
    assert len(won) == len(free), [r[2].get("detail") for r in results if r[1] != 202]
    assert all(r[2]["title"] == "No capacity" for r in results if r[1] != 202)
    booked = [node for _, _, body in won for node in body["nodes"]]
    assert sorted(booked) == free  # every free node once, none twice
    for tenant, _, body in won:
        device = devices(nb, body["nodes"])[body["nodes"][0]]
        assert device["tenant"]["slug"] == tenant and device["cluster"]["id"] == body["netbox_cluster_id"]
    for tenant in ("qa-one", "qa-two"):
        delete_all(app.test_client(), qa[f"{tenant}-admin"], tenant)
    assert free_servers(nb) == free


def test_concurrent_requests_cannot_overrun_a_quota(app, qa, quota, nb):
    quota("qa-two", quota_gpus=16)
    results = []

    def ask(index):
        response = app.test_client().post("/v1/clusters", json={"name": f"q-{index}", "kind": "k8s", "gpus": 8,
                                                                "vendor": "AMD"}, headers=qa["qa-two-admin"])
        results.append(response.status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [202, 202] + [409] * 6
    held = nb.list("dcim/devices", tenant="qa-two", fields="name")
    assert len(held) == 2
    delete_all(app.test_client(), qa["qa-two-admin"], "qa-two")


WIPE_STAGES = STAGES.replace("delete: []", "delete:\n  - {stage: wipe, playbook: cluster_wipe}")


def test_delete_wipes_the_nodes_over_redfish_before_releasing_them(cluster_settings, qa, nb, lab_env, tmp_path):
    stages = tmp_path / "clusters.yml"
    stages.write_text(WIPE_STAGES)
    wiping = dataclasses.replace(cluster_settings, cluster_stages=stages,
                                 job_env=(bmc_emulator.PASSWORD_ENV, bmc_emulator.CA_ENV, bmc_emulator.PORT_ENV))
    client = create_app(wiping).test_client()
    pool = Workers(wiping, tmp_path)
    pool.start(1)
    try:
        created = client.post("/v1/clusters", json={"name": "wiped", "kind": "slurm", "nodes": 1,
                                                    "model": "H200-SXM-141GB"}, headers=qa["qa-one-admin"])
        assert created.status_code == 202, created.json
        cluster, node = created.json, created.json["nodes"][0]
        ready = wait_until(lambda: _status(client, qa, cluster["id"], "ready", "failed"), "cluster ready", 180)
        assert ready["status"] == "ready", ready
        deleting = client.delete(f"/v1/clusters/{cluster['id']}", headers=qa["qa-one-admin"]).json
        assert deleting["status"] == "deleting" and deleting["stages"][0]["stage"] == "wipe"
        done = wait_until(lambda: _status(client, qa, cluster["id"], "deleted", "failed"), "wiped", 240)
        assert done["status"] == "deleted", done
        device = devices(nb, [node])[node]
        assert device["tenant"] is None and device["cluster"] is None and device["status"]["value"] == "active"
        entries = nb.list("extras/journal-entries", assigned_object_type="dcim.device",
                          assigned_object_id=device["id"])
        assert any("power: On -> Off" in e["comments"] for e in entries)
        assert not any(lab_env[bmc_emulator.PASSWORD_ENV] in e["comments"] for e in entries)
    finally:
        pool.stop()
        server = next(s for s in plan(FLEET_NODES).servers if s.name == node)
        _power_on(server.bmc_ip.split("/")[0], lab_env)


def _power_on(address: str, lab_env) -> None:
    """The lab keeps its nodes on; the wipe left this one off."""
    session = requests.Session()
    session.auth = (bmc_emulator.USERNAME, lab_env[bmc_emulator.PASSWORD_ENV])
    session.verify, session.trust_env = lab_env[bmc_emulator.CA_ENV], False
    base = f"https://{address}:{bmc_emulator.port()}"
    system = session.get(f"{base}/redfish/v1/Systems", timeout=10).json()["Members"][0]["@odata.id"]
    session.post(f"{base}{system}/Actions/ComputerSystem.Reset", json={"ResetType": "On"}, timeout=10)


def test_cost_can_be_turned_off(cluster_settings, qa):
    app = create_app(dataclasses.replace(cluster_settings, cost_enabled=False))
    response = app.test_client().post("/v1/clusters", json=AMD_LEAF | {"name": "c", "dry_run": True},
                                      headers=qa["qa-one-admin"])
    assert response.status_code == 200 and "estimate" not in response.json
    assert app.test_client().get("/v1/tenants/qa-one/cost", headers=qa["qa-one-viewer"]).status_code == 404


def test_stage_jobs_are_not_launchable_by_tenants(client, qa):
    response = client.post("/v1/jobs", json={"playbook": "cluster_network"}, headers=qa["qa-one-admin"])
    assert response.status_code == 422 and "cluster_network" not in response.json["errors"][0]["message"]
    listed = {p["name"] for p in client.get("/v1/playbooks", headers=qa["qa-one-viewer"]).json["items"]}
    assert "cluster_bios" not in listed


def test_a_project_bound_user_stays_in_its_projects(client, qa, quota, rt, nb):
    quota("qa-one", projects={"vision": {"quota": {"gpus": 16}}, "nlp": {"quota": {"gpus": 16}}})
    token, _ = rt.tokens.issue(Role.TENANT_OPERATOR, "qa-one", "project-bound", "tests", user="bo@qa.example",
                               projects=["vision"])
    bound = {"Authorization": f"Bearer {token}"}
    nlp = client.post("/v1/clusters", json={"name": "nlp", "kind": "k8s", "nodes": 1, "vendor": "AMD",
                                            "project": "nlp"}, headers=qa["qa-one-admin"])
    assert nlp.status_code == 202, nlp.json
    refused = client.post("/v1/clusters", json={"name": "x", "kind": "k8s", "nodes": 1, "project": "nlp"},
                          headers=bound)
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "project"
    unknown = client.post("/v1/clusters", json={"name": "x", "kind": "k8s", "nodes": 1, "project": "nope"},
                          headers=qa["qa-one-admin"])
    assert unknown.status_code == 422 and "no project nope" in unknown.json["errors"][0]["message"]
    assert client.get(f"/v1/clusters/{nlp.json['id']}", headers=bound).status_code == 404
    assert client.delete(f"/v1/clusters/{nlp.json['id']}", headers=bound).status_code == 404
    stage_job = nlp.json["stages"][0]["job"]
    assert client.get(f"/v1/jobs/{stage_job}", headers=bound).status_code == 404
    assert client.get(f"/v1/jobs/{stage_job}", headers=qa["qa-one-admin"]).status_code == 200
    node = nlp.json["nodes"][0]
    launch = client.post("/v1/jobs", json={"playbook": "node_healthcheck", "limit": [node]}, headers=bound)
    assert launch.status_code == 422 and launch.json["errors"][0]["field"] == "limit[0]"
    report = client.get("/v1/tenants/qa-one/quota", headers=bound).json
    assert set(report["projects"]) == {"vision"}
    delete_all(client, qa["qa-one-admin"], "qa-one")


def test_offboarding_takes_back_nodes_held_outside_clusters(rt, qa, nb):
    from runner_api import clusters

    free = free_servers(nb)
    device = nb.list("dcim/devices", name=free[0], fields="id")[0]
    tenant = nb.list("tenancy/tenants", slug="qa-two", fields="id")[0]
    nb.update("dcim/devices", [{"id": device["id"], "tenant": tenant["id"]}])  # assigned by hand
    assert clusters.release_all(rt, "qa-two") == 0  # no wipe stage in this module's plan: released at once
    assert free_servers(nb) == free
    adopted = [c for c in rt.clusters.of_tenant("qa-two") if c["kind"] == "adopted"]
    assert adopted and adopted[0]["status"] == "deleted" and adopted[0]["nodes"] == [free[0]]
