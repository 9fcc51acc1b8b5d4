"""The runner API without workers: identity, RBAC, tenant isolation, validation, injection, errors."""

import json
import zlib

import pytest
from runner_support import submit

from runner_api.tokens import digest

pytestmark = pytest.mark.netbox

INJECTIONS = [
    "{{ lookup('pipe','id') }}",
    "{{lookup('pipe', 'id')}}",
    "{%- set x = lookup('pipe','id') -%}{{ x }}",
    "{# comment #}",
    "prefix {{ query('pipe', 'id') }} suffix",
    "{{ ''.__class__.__mro__ }}",
    "line\n{{ lookup('env','NETBOX_TOKEN') }}",
    "{%raw%}{{ lookup('pipe','id') }}{%endraw%}",
]


@pytest.fixture
def acme_job(client, tokens, tenant_nodes):
    """A queued acme job (no workers run in this module); canceled afterwards."""
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck",
                                                     "limit": tenant_nodes["acme"][:1]})
    yield job
    client.post(f"/v1/jobs/{job['id']}/cancel", headers=tokens["acme-operator"])


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"redis": "ok", "netbox": "ok"}


def test_openapi_spec_and_docs(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/cancel",
                 "/v1/playbooks", "/v1/tenants", "/v1/tokens", "/v1/audit", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger-ui-bundle.js" in docs.data
    assert client.get("/docs/swagger-ui-bundle.js").status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer gpc_x_y",
                                    "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."])
def test_unauthenticated_calls_get_401_problems(client, header):
    response = client.get("/v1/jobs", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 401 and response.json["correlation_id"]


def test_tokens_are_stored_hashed(runtime, client, tokens):
    token = client.post("/v1/tokens", json={"role": "tenant-viewer", "tenant": "acme"},
                        headers=tokens["admin"]).json["token"]
    dump = json.dumps({key: runtime.store.redis.dump(key).hex() if runtime.store.redis.type(key) != "none" else ""
                       for key in runtime.store.redis.keys("gpucloud:token*")})
    assert token not in dump and token.split("_")[-1] not in dump
    assert runtime.store.redis.exists(f"gpucloud:token:{digest(token)}")


def test_token_lifecycle_and_role_limits(client, tokens):
    issued = client.post("/v1/tokens", json={"role": "tenant-operator", "description": "ci"},
                         headers=tokens["acme-admin"])
    assert issued.status_code == 201 and issued.json["tenant"] == "acme"
    mine = {"Authorization": f"Bearer {issued.json['token']}"}
    assert client.get("/v1/whoami", headers=mine).json["role"] == "tenant-operator"
    # Nobody issues above their own role; tenant admins never mint platform tokens.
    assert client.post("/v1/tokens", json={"role": "platform-admin"}, headers=tokens["acme-admin"]).status_code == 403
    assert client.post("/v1/tokens", json={"role": "tenant-admin"}, headers=mine).status_code == 403
    listed = client.get("/v1/tokens", headers=tokens["acme-admin"]).json["items"]
    assert issued.json["id"] in {t["id"] for t in listed} and all(t["tenant"] == "acme" for t in listed)
    assert "token" not in listed[0]
    assert client.delete(f"/v1/tokens/{issued.json['id']}", headers=tokens["acme-admin"]).status_code == 204
    assert client.get("/v1/whoami", headers=mine).status_code == 401


@pytest.mark.parametrize(("who", "method", "path", "body", "status"), [
    ("acme-viewer", "post", "/v1/jobs", {"playbook": "node_healthcheck"}, 403),
    ("acme-operator", "post", "/v1/tokens", {"role": "tenant-viewer"}, 403),
    ("acme-operator", "get", "/v1/tokens", None, 403),
    ("acme-admin", "post", "/v1/tenants", {"slug": "acme"}, 403),
    ("acme-admin", "get", "/v1/audit", None, 403),
    ("acme-admin", "get", "/metrics", None, 403),
    ("acme-admin", "patch", "/v1/tenants/acme", {"concurrency": 99}, 403),
])
def test_roles_are_enforced(client, tokens, who, method, path, body, status):
    response = getattr(client, method)(path, json=body, headers=tokens[who])
    assert response.status_code == status, response.json


@pytest.mark.parametrize("who", ["globex-admin", "globex-operator", "globex-viewer"])
def test_tenant_cannot_see_or_touch_another_tenants_job(client, tokens, acme_job, who):
    foreign = tokens[who]
    job_id = acme_job["id"]
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/events"):
        response = client.get(path, headers=foreign)
        assert response.status_code == 404 and response.json["detail"] == f"no job {job_id}"
    sse = client.get(f"/v1/jobs/{job_id}/events", headers=foreign | {"Accept": "text/event-stream"})
    assert sse.status_code == 404
    cancel = client.post(f"/v1/jobs/{job_id}/cancel", headers=foreign)
    assert cancel.status_code in (403, 404) and (cancel.status_code == 404 or who == "globex-viewer")
    listed = client.get("/v1/jobs?limit=500", headers=foreign).json["items"]
    assert job_id not in {j["id"] for j in listed} and all(j["tenant"] == "globex" for j in listed)
    assert client.get("/v1/jobs?tenant=acme", headers=foreign).json["items"] == []
    # The job is untouched.
    assert client.get(f"/v1/jobs/{job_id}", headers=tokens["acme-viewer"]).json["status"] == "queued"


def test_foreign_job_404_matches_a_missing_job(client, tokens, acme_job):
    missing = client.get("/v1/jobs/00000000-0000-4000-8000-000000000000", headers=tokens["globex-admin"])
    foreign = client.get(f"/v1/jobs/{acme_job['id']}", headers=tokens["globex-admin"])
    assert missing.status_code == foreign.status_code == 404
    assert missing.json["title"] == foreign.json["title"]


def test_tenant_cannot_touch_another_tenants_tenant_tokens_or_nodes(client, tokens, tenant_nodes):
    globex = tokens["globex-admin"]
    assert client.get("/v1/tenants/acme", headers=globex).status_code == 404
    assert [t["slug"] for t in client.get("/v1/tenants", headers=globex).json["items"]] == ["globex"]
    oidc = {"issuer": "https://idp.example.com/acme", "audience": "gpucloud", "jwks_uri": "https://idp.example.com/k"}
    assert client.put("/v1/tenants/acme/oidc", json=oidc, headers=globex).status_code == 404
    assert client.delete("/v1/tenants/acme/oidc", headers=globex).status_code == 404
    foreign_token = client.post("/v1/tokens", json={"role": "tenant-viewer", "tenant": "acme"}, headers=globex)
    assert foreign_token.status_code == 404
    acme_token = client.post("/v1/tokens", json={"role": "tenant-viewer"}, headers=tokens["acme-admin"]).json
    assert client.delete(f"/v1/tokens/{acme_token['id']}", headers=globex).status_code == 404
    assert acme_token["id"] not in {t["id"] for t in client.get("/v1/tokens", headers=globex).json["items"]}
    launch = client.post("/v1/jobs", json={"playbook": "node_healthcheck", "tenant": "acme"},
                         headers=tokens["globex-operator"])
    assert launch.status_code == 422 and launch.json["errors"][0]["field"] == "tenant"
    limited = client.post("/v1/jobs", json={"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1]},
                          headers=tokens["globex-operator"])
    assert limited.status_code == 422
    assert limited.json["errors"] == [{"field": "limit[0]",
                                       "message": f"{tenant_nodes['acme'][0]!r} is not a node of this tenant"}]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_jinja_in_tenant_input_is_rejected(client, tokens, payload):
    for body, field in (
        ({"variables": {"node_healthcheck_note": payload}}, "variables.node_healthcheck_note"),
        ({"variables": {"node_healthcheck_allowed_statuses": ["active", payload]}},
         "variables.node_healthcheck_allowed_statuses[1]"),
        ({"limit": [payload]}, "limit[0]"),
    ):
        response = client.post("/v1/jobs", json={"playbook": "node_healthcheck", **body},
                               headers=tokens["acme-operator"])
        assert response.status_code == 422, response.json
        assert field in {e["field"] for e in response.json["errors"]}, response.json


def test_every_launch_error_is_reported_at_once(client, tokens):
    response = client.post("/v1/jobs", headers=tokens["acme-operator"], json={
        "playbook": "node_healthcheck", "timeout": 100000, "limit": ["web*", "gpu-nope"],
        "variables": {"ansible_become": True, "become_user": "root", "ansible_connection": "local",
                      "node_healthcheck_min_gpus": "eight", "surprise": 1}})
    assert response.status_code == 422
    fields = {e["field"]: e["message"] for e in response.json["errors"]}
    assert "ansible_* variables" in fields["variables.ansible_become"]
    assert "ansible_* variables" in fields["variables.ansible_connection"]
    assert "privilege" in fields["variables.become_user"]
    assert "integer" in fields["variables.node_healthcheck_min_gpus"]
    assert "unknown variable" in fields["variables.surprise"]
    assert "patterns" in fields["limit[0]"] and "not a node" in fields["limit[1]"]
    assert "at most" in fields["timeout"]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "playbook"),
    ({"playbook": "rm_rf"}, "playbook"),
    ({"playbook": "node_healthcheck", "extra": 1}, "extra"),
    ({"playbook": "node_healthcheck", "variables": []}, "variables"),
    ({"playbook": "node_healthcheck", "limit": "gpu-1"}, "limit"),
])
def test_malformed_launch_names_the_field(client, tokens, body, field):
    response = client.post("/v1/jobs", json=body, headers=tokens["acme-operator"])
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json["errors"]}, response.json


def test_not_json_is_a_clear_422(client, tokens):
    response = client.post("/v1/jobs", data="playbook=x", headers=tokens["acme-operator"])
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "body"


def test_correlation_id_is_echoed_and_stored(client, tokens, runtime, tenant_nodes):
    headers = tokens["acme-operator"] | {"X-Correlation-ID": "ticket-4711"}
    response = client.post("/v1/jobs", json={"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1]},
                           headers=headers)
    assert response.headers["X-Correlation-ID"] == "ticket-4711"
    assert response.json["correlation_id"] == "ticket-4711"
    client.post(f"/v1/jobs/{response.json['id']}/cancel", headers=tokens["acme-operator"])
    bogus = client.get("/healthz", headers={"X-Correlation-ID": "bad id with spaces"})
    assert bogus.headers["X-Correlation-ID"] != "bad id with spaces"


def test_state_changes_are_audited(client, tokens):
    response = client.post("/v1/jobs", json={"playbook": "node_healthcheck", "variables": {"x": 1}},
                           headers=tokens["acme-operator"] | {"X-Correlation-ID": "audit-1"})
    assert response.status_code == 422
    records = client.get("/v1/audit?tenant=acme&limit=20", headers=tokens["admin"]).json["items"]
    match = [r for r in records if r["correlation_id"] == "audit-1"]
    assert match and match[0]["status"] == 422 and match[0]["who"].startswith("token:")
    assert set(match[0]) >= {"time", "who", "role", "tenant", "action", "target", "correlation_id"}


def test_queued_jobs_carry_json_never_pickle(client, tokens, tenant_nodes, runtime):
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1]})
    try:
        payload = zlib.decompress(runtime.store.rq.hget(f"rq:job:{job['id']}", "data"))
        assert json.loads(payload) == ["runner_api.execution.run_job", None, [job["id"]], {}]
    finally:
        client.post(f"/v1/jobs/{job['id']}/cancel", headers=tokens["acme-operator"])


def test_canceling_a_queued_job(client, tokens, tenant_nodes, runtime):
    job = submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck", "limit": tenant_nodes["acme"][:1]})
    assert runtime.store.redis.lpos("rq:queue:tenant.acme", job["id"]) is not None
    canceled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=tokens["acme-operator"])
    assert canceled.status_code == 202 and canceled.json["status"] == "canceled"
    assert runtime.store.redis.lpos("rq:queue:tenant.acme", job["id"]) is None
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=tokens["acme-operator"]).status_code == 409
    events = client.get(f"/v1/jobs/{job['id']}/events", headers=tokens["acme-viewer"]).json
    assert events["finished"] and events["items"][-1]["event"] == "job_end"


def test_jobs_list_filters_and_pagination(client, tokens, tenant_nodes):
    ids = [submit(client, tokens["acme-operator"], {"playbook": "node_healthcheck",
                                                     "limit": tenant_nodes["acme"][:1]})["id"] for _ in range(3)]
    for job_id in ids:
        client.post(f"/v1/jobs/{job_id}/cancel", headers=tokens["acme-operator"])
    first = client.get("/v1/jobs?limit=2&status=canceled", headers=tokens["acme-viewer"]).json
    second = client.get(f"/v1/jobs?limit=2&status=canceled&offset={first['next_offset']}",
                        headers=tokens["acme-viewer"]).json
    assert [j["id"] for j in first["items"] + second["items"]][:3] == ids[::-1]
    assert client.get("/v1/jobs?status=bogus", headers=tokens["acme-viewer"]).status_code == 422
    everyone = client.get("/v1/jobs?limit=500", headers=tokens["admin"]).json["items"]
    assert {j["tenant"] for j in everyone} >= {"acme"}


def test_netbox_down_gives_503(runner_settings, tokens):
    from dataclasses import replace

    from runner_api import create_app

    app = create_app(replace(runner_settings, netbox_url="http://127.0.0.1:9", inventory_ttl=0))
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "netbox" in ready.json["detail"]
    launch = client.post("/v1/jobs", json={"playbook": "node_healthcheck"}, headers=tokens["acme-operator"])
    assert launch.status_code == 503 and "NetBox" in launch.json["detail"]
    # Reads that do not need NetBox keep working.
    assert client.get("/v1/jobs", headers=tokens["acme-viewer"]).status_code == 200


def test_metrics_exposition(client, tokens):
    text = client.get("/metrics", headers=tokens["admin"]).get_data(as_text=True)
    assert 'gpucloud_queue_depth{tenant="acme"}' in text
    assert "gpucloud_job_duration_seconds" in text or "gpucloud_jobs" in text


def test_playbook_catalogue_comes_from_argument_specs(client, tokens):
    items = {p["name"]: p for p in client.get("/v1/playbooks", headers=tokens["acme-viewer"]).json["items"]}
    variables = items["node_healthcheck"]["variables"]
    assert variables["additionalProperties"] is False
    assert variables["properties"]["node_healthcheck_soak_seconds"]["type"] == "integer"
    assert items["node_healthcheck"]["tasks"] >= 5
