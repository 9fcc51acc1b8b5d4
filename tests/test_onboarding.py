"""Onboarding and offboarding tenants end to end against the lab's NetBox and a runner on its own Redis database:
every step, an idempotent re-run, a failed step resumed, invitations and project scoping, isolation between tenants,
offboarding back to the pools; then the same through the `gpucloud` CLI and the tenant_onboard playbook."""

import json
import secrets
import threading

import pytest
import yaml
from click.testing import CliRunner
from test_runner_oidc import bearer, keypair
from test_runner_oidc import token as signed
from werkzeug.serving import make_server

from conftest import ansible_playbook, recap
from runner_api import onboarding, store
from runner_api.cli import cli as gpucloud

pytestmark = pytest.mark.netbox
POOL = "tenant-fabric"
MODEL = "H100-SXM5-80GB"


def new_slug(prefix: str = "ob") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def request_for(slug: str, **changes) -> dict:
    return {"slug": slug, "name": f"Test {slug}", "description": "onboarding test",
            "quota": {"gpus": 32, "gpus_by_model": {MODEL: 16}, "cpus": 512, "memory_gb": 4096, "storage_tb": 50,
                      "alert_thresholds": [75, 100]},
            "admin": {"email": f"admin@{slug}.example"},
            "networks": {"pool": POOL, "site": "dc1", "vlans": [{"name": "compute"}, {"name": "storage"}]},
            "projects": {"research": {"description": "R&D", "quota": {"gpus": 16, "gpus_by_model": {MODEL: 8}}},
                         "training": {}},
            "users": [{"email": f"bob@{slug}.example", "role": "tenant-operator", "projects": ["research"]},
                      {"email": f"carol@{slug}.example"}]} | changes


def steps(flow: dict) -> dict:
    return {s["name"]: (s["status"], s["changed"]) for s in flow["steps"]}


def netbox_tenant(nb, slug: str) -> dict | None:
    found = nb.list("tenancy/tenants", slug=slug)
    return found[0] if found else None


def held(nb, slug: str) -> dict:
    tenant = netbox_tenant(nb, slug)
    if tenant is None:
        return {"vrfs": [], "vlans": [], "prefixes": [], "ib_pkey": None}
    return {"vrfs": nb.list("ipam/vrfs", tenant_id=tenant["id"]),
            "vlans": nb.list("ipam/vlans", tenant_id=tenant["id"]),
            "prefixes": nb.list("ipam/prefixes", tenant_id=tenant["id"]),
            "ib_pkey": tenant["custom_fields"]["ib_pkey"]}


def netbox_changes(nb) -> int:
    return nb.get("core/object-changes", limit=1)["count"]


def accept(client, code: str):
    return client.post("/v1/invitations/accept", json={"code": code})


@pytest.fixture(scope="module")
def api(runner_app):
    return runner_app.test_client()


@pytest.fixture(scope="module")
def offboard_later(runtime):
    """Slugs to offboard when the module is done, so the pools get back what the tests took."""
    slugs = []
    yield slugs
    for slug in slugs:
        flow = onboarding.offboard(runtime, slug, "tests")
        assert flow["status"] == "offboarded", flow


@pytest.fixture(scope="module")
def first(api, tokens, offboard_later):
    """A tenant onboarded with networks, projects and users: (request, first response)."""
    slug = new_slug()
    offboard_later.append(slug)
    request = request_for(slug)
    response = api.post("/v1/onboardings", json=request, headers=tokens["admin"])
    assert response.status_code == 201, response.json
    return request, response.json


@pytest.fixture(scope="module")
def codes(first) -> dict:
    return {i["email"]: i["code"] for i in first[1]["invitations"]}


def test_onboarding_runs_every_step(first, runtime, nb):
    request, flow = first
    slug = request["slug"]
    assert flow["status"] == "ready" and flow["changed"]
    assert steps(flow) == {name: ("done", True) for name in
                           ("domain", "identity", "admin", "networks", "projects", "users", "ready")}
    assert sorted(i["email"] for i in flow["invitations"]) == sorted(
        [f"admin@{slug}.example", f"bob@{slug}.example", f"carol@{slug}.example"])
    tenant = netbox_tenant(nb, slug)
    cf = tenant["custom_fields"]
    assert (cf["quota_gpus"], cf["quota_gpus_by_model"], cf["quota_cpus"], cf["quota_memory_gb"]) == \
        (32, {MODEL: 16}, 512, 4096)
    assert float(cf["quota_storage_tb"]) == 50 and cf["quota_alert_thresholds"] == [75, 100]
    assert cf["onboarding_state"] == "ready"
    assert cf["projects"] == {"research": {"description": "R&D", "quota": {"gpus": 16, "gpus_by_model": {MODEL: 8}}},
                              "training": {"description": "", "quota": {}}}
    networks = next(s for s in flow["steps"] if s["name"] == "networks")["detail"]
    assert [v["name"] for v in networks["vlans"]] == ["compute", "storage"] and networks["ib_pkey"]
    allocation = held(nb, slug)
    assert len(allocation["vrfs"]) == 1 and len(allocation["vlans"]) == 3  # two networks and the L3VNI VLAN
    assert len(allocation["prefixes"]) == 4 and allocation["ib_pkey"] == networks["ib_pkey"]
    runner_tenant = runtime.tenants.get(slug)
    assert runner_tenant.realm == "token" and runner_tenant.default_role == "tenant-viewer"


def test_the_same_request_again_changes_nothing(first, api, tokens, nb):
    request, _ = first
    before = netbox_changes(nb)
    again = api.post("/v1/onboardings", json=request, headers=tokens["admin"])
    assert again.status_code == 200, again.json
    assert again.json["status"] == "ready" and not again.json["changed"] and again.json["invitations"] == []
    assert all(not s["changed"] for s in again.json["steps"])
    assert netbox_changes(nb) == before  # not one write to NetBox
    shown = api.get(f"/v1/onboardings/{request['slug']}", headers=tokens["admin"]).json
    assert shown["status"] == "ready" and "invitations" not in shown


def test_invitations_are_single_use_and_bind_tokens_to_users(first, codes, api):
    slug = first[0]["slug"]
    bob = accept(api, codes[f"bob@{slug}.example"])
    assert bob.status_code == 201, bob.json
    assert (bob.json["tenant"], bob.json["role"], bob.json["projects"]) == (slug, "tenant-operator", ["research"])
    who = api.get("/v1/whoami", headers={"Authorization": f"Bearer {bob.json['token']}"}).json
    assert who["user"] == f"bob@{slug}.example" and who["projects"] == ["research"] and who["tenant"] == slug
    again = accept(api, codes[f"bob@{slug}.example"])
    assert again.status_code == 422 and again.json["errors"][0]["field"] == "code"


@pytest.mark.parametrize("code", ["", "gpi_", "gpi_not-a-code", "gpc_abc_def", "x" * 200])
def test_unknown_invitation_codes_are_refused(api, code):
    response = accept(api, code)
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "code"


@pytest.fixture(scope="module")
def tenant_admin(first, codes, api) -> dict:
    slug = first[0]["slug"]
    response = accept(api, codes[f"admin@{slug}.example"])
    assert response.status_code == 201 and response.json["role"] == "tenant-admin"
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_tenant_admin_manages_users_and_projects(first, api, tenant_admin):
    slug = first[0]["slug"]
    base = f"/v1/tenants/{slug}"
    listed = {u["email"]: u for u in api.get(f"{base}/users", headers=tenant_admin).json["items"]}
    assert listed[f"admin@{slug}.example"]["status"] == "active" and "invitation" not in listed[f"bob@{slug}.example"]
    created = api.post(f"{base}/projects", json={"name": "inference", "quota": {"gpus": 4}}, headers=tenant_admin)
    assert created.status_code == 201, created.json
    invited = api.post(f"{base}/users", json={"email": f"dave@{slug}.example", "projects": ["inference"]},
                       headers=tenant_admin)
    assert invited.status_code == 201 and invited.json["role"] == "tenant-viewer"  # the tenant's default role
    dave = accept(api, invited.json["invitation"]["code"]).json
    dave_headers = {"Authorization": f"Bearer {dave['token']}"}
    # Dave sees only his project; a tenant admin sees them all.
    assert [p["name"] for p in api.get(f"{base}/projects", headers=dave_headers).json["items"]] == ["inference"]
    assert api.get(f"{base}/projects/research", headers=dave_headers).status_code == 404
    everyone = api.get(f"{base}/projects", headers=tenant_admin).json
    assert [p["name"] for p in everyone["items"]] == ["inference", "research", "training"]
    assert everyone["tenant_quota"]["gpus"] == 32
    # His projects change: his token follows.
    changed = api.patch(f"{base}/users/dave@{slug}.example", json={"projects": ["research"]}, headers=tenant_admin)
    assert changed.status_code == 200 and changed.json["projects"] == ["research"]
    assert api.get("/v1/whoami", headers=dave_headers).json["projects"] == ["research"]
    # Deleting a project takes it off every user's list.
    assert api.delete(f"{base}/projects/inference", headers=tenant_admin).status_code == 204
    # Removing him revokes his token.
    assert api.delete(f"{base}/users/dave@{slug}.example", headers=tenant_admin).status_code == 204
    assert api.get("/v1/whoami", headers=dave_headers).status_code == 401


@pytest.mark.parametrize(("body", "fields"), [
    ({"name": "big", "quota": {"gpus": 33}}, ["body.quota.gpus"]),
    ({"name": "big", "quota": {"cpus": 513, "gpus_by_model": {MODEL: 17}}},
     ["body.quota.cpus", f"body.quota.gpus_by_model.{MODEL}"]),
])
def test_project_quota_may_not_exceed_the_tenants(first, api, tenant_admin, body, fields):
    response = api.post(f"/v1/tenants/{first[0]['slug']}/projects", json=body, headers=tenant_admin)
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == fields
    assert all("project big" in e["message"] and "tenant's quota" in e["message"] for e in response.json["errors"])


def test_tenant_roles_and_platform_admin_limits(first, api, tenant_admin, tokens):
    slug = first[0]["slug"]
    for body in ({"email": f"eve@{slug}.example", "role": "platform-admin"},
                 {"email": "not-an-email", "role": "tenant-viewer"}):
        assert api.post(f"/v1/tenants/{slug}/users", json=body, headers=tenant_admin).status_code == 422
    assert api.post("/v1/onboardings", json=first[0], headers=tenant_admin).status_code == 403
    assert api.post(f"/v1/offboardings/{slug}", headers=tenant_admin).status_code == 403
    assert api.get(f"/v1/onboardings/{slug}", headers=tenant_admin).status_code == 200
    assert api.get(f"/v1/tenants/{slug}/users", headers=tokens["admin"]).status_code == 200


def foreign_calls(slug: str):
    return [("get", f"/v1/onboardings/{slug}", None), ("get", f"/v1/tenants/{slug}/users", None),
            ("post", f"/v1/tenants/{slug}/users", {"email": "mallory@evil.example"}),
            ("patch", f"/v1/tenants/{slug}/users/bob@{slug}.example", {"role": "tenant-admin"}),
            ("delete", f"/v1/tenants/{slug}/users/bob@{slug}.example", None),
            ("get", f"/v1/tenants/{slug}/projects", None), ("get", f"/v1/tenants/{slug}/projects/research", None),
            ("post", f"/v1/tenants/{slug}/projects", {"name": "stolen"}),
            ("patch", f"/v1/tenants/{slug}/projects/research", {"quota": {"gpus": 1}}),
            ("delete", f"/v1/tenants/{slug}/projects/research", None)]


def test_tenants_cannot_see_or_act_on_each_other(first, api, tokens, tenant_admin, runtime):
    slug = first[0]["slug"]
    for method, path, body in foreign_calls(slug):
        response = getattr(api, method)(path, json=body, headers=tokens["globex-admin"])
        assert response.status_code == 404, (method, path, response.json)
    for method, path, body in foreign_calls("globex"):
        response = getattr(api, method)(path, json=body, headers=tenant_admin)
        assert response.status_code == 404, (method, path, response.json)
    assert runtime.store.redis.hexists(store.users_key(slug), f"bob@{slug}.example")
    names = [p["name"] for p in api.get(f"/v1/tenants/{slug}/projects", headers=tenant_admin).json["items"]]
    assert "stolen" not in names and "research" in names


def test_secrets_are_never_in_the_record_or_the_audit(first, codes, runtime):
    slug = first[0]["slug"]
    record = runtime.store.redis.get(store.onboarding_key(slug))
    audit = json.dumps(runtime.store.redis.xrange(store.AUDIT))
    users = json.dumps(runtime.store.redis.hgetall(store.users_key(slug)))
    for code in codes.values():
        secret = code.removeprefix("gpi_")
        assert secret not in record and secret not in audit and secret not in users


def test_a_failed_step_is_resumed(api, tokens, nb, offboard_later):
    slug = new_slug()
    offboard_later.append(slug)
    # A /12 per network cannot come out of the pool's /16: the networks step fails.
    impossible = request_for(slug, networks={"pool": POOL, "vlans": 1, "prefix_length": 12})
    failed = api.post("/v1/onboardings", json=impossible, headers=tokens["admin"])
    assert failed.status_code == 201 and failed.json["status"] == "failed"
    state = steps(failed.json)
    assert state["domain"] == state["identity"] == state["admin"] == ("done", True)
    assert state["networks"][0] == "failed" and state["projects"][0] == state["ready"][0] == "pending"
    step = next(s for s in failed.json["steps"] if s["name"] == "networks")
    assert "/12" in step["error"] and step["errors"][0]["field"] == "networks"
    assert netbox_tenant(nb, slug)["custom_fields"]["onboarding_state"] == "failed:networks"
    assert held(nb, slug)["vlans"] == []  # what the failed allocation created was rolled back
    assert len(failed.json["invitations"]) == 1  # the admin's, shown in the response that made it
    shown = api.get(f"/v1/onboardings/{slug}", headers=tokens["admin"]).json
    assert shown["status"] == "failed" and steps(shown)["networks"][0] == "failed"
    # The request fixed: the finished steps change nothing, the rest runs.
    resumed = api.post("/v1/onboardings", json=request_for(slug), headers=tokens["admin"])
    assert resumed.status_code == 200 and resumed.json["status"] == "ready"
    state = steps(resumed.json)
    assert state["domain"] == state["identity"] == state["admin"] == ("done", False)
    assert state["networks"] == state["projects"] == ("done", True)
    assert [i["email"] for i in resumed.json["invitations"]] == [f"bob@{slug}.example", f"carol@{slug}.example"]
    assert netbox_tenant(nb, slug)["custom_fields"]["onboarding_state"] == "ready"


@pytest.mark.parametrize(("changes", "fields"), [
    ({"projects": {"huge": {"quota": {"gpus": 64, "storage_tb": 51}}}},
     ["projects.huge.quota.gpus", "projects.huge.quota.storage_tb"]),
    ({"identity": {"realm": "oidc"}}, ["identity.oidc"]),
    ({"users": [{"email": "twice@x.example"}, {"email": "TWICE@x.example"}]}, ["users[1].email"]),
    ({"networks": {"vlans": [{"name": "l3vni"}]}}, ["networks.vlans[0].name"]),
    ({"users": [{"email": "x@y.example", "role": "platform-admin"}]}, ["users.0.role"]),
])
def test_bad_requests_are_refused_before_any_step(api, tokens, nb, changes, fields):
    slug = new_slug()
    response = api.post("/v1/onboardings", json=request_for(slug, **changes), headers=tokens["admin"])
    assert response.status_code == 422, response.json
    assert [e["field"] for e in response.json["errors"]] == fields
    assert netbox_tenant(nb, slug) is None


def test_offboarding_waits_for_clusters_and_refuses_queued_jobs(api, tokens, runtime, monkeypatch, nb):
    slug = new_slug()
    request = request_for(slug, networks={"pool": POOL, "vlans": 1}, projects={}, users=[])
    assert api.post("/v1/onboardings", json=request, headers=tokens["admin"]).json["status"] == "ready"
    job = api.post("/v1/jobs", json={"playbook": "node_healthcheck", "tenant": slug}, headers=tokens["admin"])
    assert job.status_code == 201, job.json
    refused = api.post(f"/v1/offboardings/{slug}", headers=tokens["admin"])
    assert refused.status_code == 409 and "1 queued or running job" in refused.json["detail"]
    assert runtime.tenants.get(slug) is not None  # nothing was touched
    api.post(f"/v1/jobs/{job.json['id']}/cancel", headers=tokens["admin"])
    left = iter([2, 1, 0])
    monkeypatch.setattr(onboarding.clusters, "release_all", lambda rt, tenant: next(left))
    waiting = api.post(f"/v1/offboardings/{slug}", headers=tokens["admin"])
    assert waiting.status_code == 202 and waiting.json["status"] == "waiting"
    assert steps(waiting.json)["clusters"] == ("waiting", True) and steps(waiting.json)["users"][0] == "pending"
    assert "waiting for 2 cluster(s)" in waiting.json["steps"][0]["message"]
    assert api.post(f"/v1/offboardings/{slug}", headers=tokens["admin"]).status_code == 202
    done = api.post(f"/v1/offboardings/{slug}", headers=tokens["admin"])
    assert done.status_code == 200 and done.json["status"] == "offboarded"
    assert held(nb, slug)["vlans"] == []


def test_offboarding_returns_everything_to_the_pools(first, tenant_admin, api, tokens, runtime, nb, offboard_later):
    slug = first[0]["slug"]
    tenant = netbox_tenant(nb, slug)
    before = held(nb, slug)
    vids = [v["vid"] for v in before["vlans"]]
    l2vnis = [v["custom_fields"]["l2vni"] for v in before["vlans"] if v["custom_fields"].get("l2vni")]
    prefixes = sorted({p["prefix"] for p in before["prefixes"]})
    bearer_tokens = [t.id for t in runtime.tokens.list(slug)]
    assert bearer_tokens  # the admin accepted an invitation
    flow = api.post(f"/v1/offboardings/{slug}", headers=tokens["admin"])
    assert flow.status_code == 200 and flow.json["status"] == "offboarded", flow.json
    assert [s["name"] for s in flow.json["steps"]] == ["clusters", "users", "projects", "networks", "identity",
                                                       "domain"]
    released = next(s for s in flow.json["steps"] if s["name"] == "networks")["detail"]["released"]
    assert sorted(released["vlans"]) == sorted(vids) and released["ib_pkey"] == before["ib_pkey"]
    group = nb.list("ipam/vlan-groups", slug=POOL)[0]["id"]
    assert not [v for v in nb.list("ipam/vlans", group_id=group) if v["vid"] in vids]
    assert not [v for v in l2vnis if nb.list("ipam/vlans", cf_l2vni=v)]
    assert not [p for p in prefixes if nb.list("ipam/prefixes", prefix=p)]
    assert not nb.list("ipam/vrfs", name=f"gpucloud-{slug}")
    assert runtime.tokens.list(slug) == [] and runtime.tenants.get(slug) is None
    assert runtime.store.redis.hlen(store.users_key(slug)) == 0
    assert not runtime.store.redis.keys("gpucloud:invitation:*") or all(
        json.loads(runtime.store.redis.get(k))["tenant"] != slug for k in runtime.store.redis.keys(
            "gpucloud:invitation:*"))
    # Nothing referred to the tenant any more: it is gone from NetBox.
    assert next(s for s in flow.json["steps"] if s["name"] == "domain")["detail"]["deleted"]
    assert not nb.list("tenancy/tenants", id=tenant["id"])
    again = api.post(f"/v1/offboardings/{slug}", headers=tokens["admin"])
    assert again.status_code == 200 and not again.json["changed"]
    offboard_later.remove(slug)


def test_oidc_realm_scopes_projects_by_email(api, tokens, offboard_later):
    slug = new_slug("oidc")
    offboard_later.append(slug)
    private, public = keypair(f"{slug}-1")
    issuer = f"https://idp.example.com/realms/{slug}"
    request = request_for(slug, networks=None, identity={
        "realm": "oidc", "default_role": "tenant-operator",
        "oidc": {"issuer": issuer, "audience": "gpucloud", "jwks": {"keys": [public]}}})
    del request["networks"]
    flow = api.post("/v1/onboardings", json=request, headers=tokens["admin"]).json
    assert flow["status"] == "ready" and steps(flow)["networks"] == ("skipped", False)
    claims = {"iss": issuer, "aud": "gpucloud", "gpucloud_role": "tenant-operator"}
    bob = api.get("/v1/whoami", headers=bearer(signed(private, f"{slug}-1", email=f"bob@{slug}.example", **claims)))
    assert bob.status_code == 200, bob.json
    assert (bob.json["tenant"], bob.json["projects"], bob.json["via"]) == (slug, ["research"], "oidc")
    # The tenant keeps user records, so someone without one (never invited, or removed) gets no project.
    stranger = api.get("/v1/whoami", headers=bearer(signed(private, f"{slug}-1", **claims))).json
    assert stranger["tenant"] == slug and stranger["projects"] == []
    api.delete(f"/v1/tenants/{slug}/users/bob@{slug}.example", headers=tokens["admin"])
    removed = api.get("/v1/whoami", headers=bearer(signed(private, f"{slug}-1", email=f"bob@{slug}.example",
                                                           **claims))).json
    assert removed["projects"] == []


# -- the CLI and the playbook, against the API over HTTP -----------------------------------------------

@pytest.fixture(scope="module")
def api_url(runner_app):
    server = make_server("127.0.0.1", 0, runner_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def platform_token(tokens) -> str:
    return tokens["admin"]["Authorization"].split()[1]


def run_cli(config, url, *args, code=0, token=None):
    env = {"GPUCLOUD_CONFIG": str(config), "GPUCLOUD_API_URL": url, "GPUCLOUD_TOKEN": token,
           "GPUCLOUD_REDIS_URL": None}
    result = CliRunner().invoke(gpucloud, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, f"gpucloud {' '.join(args)} exited {result.exit_code}:\n{result.output}"
    return result


def test_cli_onboards_invites_and_offboards(api_url, tokens, tmp_path, nb):
    slug = new_slug("cli")
    admin_config, user_config = tmp_path / "admin.json", tmp_path / "user.json"
    token = platform_token(tokens)
    path = tmp_path / "request.yml"
    path.write_text(yaml.safe_dump(request_for(slug, networks={"pool": POOL, "vlans": 1}, users=[])))
    first = run_cli(admin_config, api_url, "onboard", "-f", str(path), token=token)
    assert "ready" in first.stderr and "admin" in first.stdout
    code = first.stdout.strip().splitlines()[-1]
    assert code.startswith("gpi_")
    again = run_cli(admin_config, api_url, "onboard", "-f", str(path), token=token)
    assert "gpi_" not in again.output
    shown = run_cli(admin_config, api_url, "onboarding", slug, token=token).stdout
    assert "networks" in shown and "done" in shown
    logged_in = run_cli(user_config, api_url, "accept", code, "--url", api_url)
    assert f"tenant-admin of tenant {slug}" in logged_in.stdout
    invited = run_cli(user_config, api_url, "users", "invite", f"erin@{slug}.example", "--role", "tenant-viewer",
                      "--project", "research")
    assert invited.stdout.strip().startswith("gpi_")
    listed = run_cli(user_config, api_url, "users", "list").stdout
    assert f"erin@{slug}.example" in listed and "invited" in listed
    run_cli(user_config, api_url, "projects", "create", "vision", "--gpus", "2", "--gpus-by-model", f"{MODEL}=2")
    too_big = run_cli(user_config, api_url, "projects", "create", "giant", "--gpus", "99", code=2)
    assert "project giant: gpus 99 exceeds the tenant's quota of 32" in too_big.stderr
    assert "vision" in run_cli(user_config, api_url, "projects", "list").stdout
    run_cli(user_config, api_url, "users", "remove", f"erin@{slug}.example")
    off = run_cli(admin_config, api_url, "offboard", slug, token=token)
    assert "offboarded" in off.stderr
    assert run_cli(user_config, api_url, "whoami", code=2).stderr.startswith("error: unknown or revoked token")
    assert held(nb, slug)["vlans"] == []


def play(tmp_path, api_url, token, *args):
    proc = ansible_playbook("playbooks/tenant_onboard.yml", *args, env={
        "GPUCLOUD_API_URL": api_url, "GPUCLOUD_TOKEN": token})
    assert "gpc_" not in proc.stdout + proc.stderr and "gpi_" not in proc.stdout + proc.stderr
    return proc


def test_playbook_check_apply_reapply_and_absent(api_url, tokens, tmp_path, nb, runtime):
    slug = new_slug("pb")
    token = platform_token(tokens)
    codes_file = tmp_path / "codes.yml"
    (tmp_path / "request.yml").write_text(yaml.safe_dump({"tenant_onboard_request": request_for(
        slug, networks={"pool": POOL, "vlans": 1})}))
    present = ("-e", f"@{tmp_path / 'request.yml'}", "-e", f"tenant_onboard_invitations_file={codes_file}")
    check = play(tmp_path, api_url, token, *present, "--check")
    assert check.returncode == 0 and recap(check)["changed"] == 1, check.stdout[-3000:]
    assert netbox_tenant(nb, slug) is None  # check mode only read
    applied = play(tmp_path, api_url, token, *present)
    assert applied.returncode == 0 and recap(applied)["changed"] >= 1, applied.stdout[-3000:]
    assert len(yaml.safe_load(codes_file.read_text())) == 3 and codes_file.stat().st_mode & 0o777 == 0o600
    reapplied = play(tmp_path, api_url, token, *present)
    assert reapplied.returncode == 0 and recap(reapplied)["changed"] == 0, reapplied.stdout[-3000:]
    assert recap(play(tmp_path, api_url, token, *present, "--check"))["changed"] == 0
    absent = ("-e", "tenant_onboard_state=absent", "-e", f"tenant_onboard_slug={slug}")
    assert recap(play(tmp_path, api_url, token, *absent, "--check"))["changed"] == 1
    removed = play(tmp_path, api_url, token, *absent)
    assert removed.returncode == 0 and recap(removed)["changed"] == 1, removed.stdout[-3000:]
    assert runtime.tenants.get(slug) is None and held(nb, slug)["vlans"] == []
    again = play(tmp_path, api_url, token, *absent)
    assert again.returncode == 0 and recap(again)["changed"] == 0
