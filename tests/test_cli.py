"""The `gpucloud` CLI, run in-process against the lab's real runner API, workers, Redis and NetBox.

Each identity (platform admin, tenant operator, viewer) gets its own config file under tmp, so the
tests never read or write ~/.config. Tokens the tests issue are revoked again.
"""

import json
import re
import socket
import stat
import time

import pytest
import requests
from click.testing import CliRunner

from runner_api.cli import cli as gpucloud
from runner_api.cli import stream as sse
from runner_api.cli.client import Api
from runner_api.cli.jobs import load_vars_file, parse_assignment
from runner_api.cli.output import clean
from runner_api.cli.stream import FINISHED, IDLE, SseParser, stream_events
from runner_api.tokens import CACHE_SECONDS

HEADLINE_NODE = "gpu-dc1-r01-k01-n01"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Cli:
    """`gpucloud` for one identity: its own config file, nothing inherited from the caller's environment."""

    token: str | None = None  # the secret, for tests that talk to the API directly

    def __init__(self, config, url: str):
        self.config = config
        self.env = {"GPUCLOUD_CONFIG": str(config), "GPUCLOUD_API_URL": url, "GPUCLOUD_TOKEN": None,
                    "GPUCLOUD_REDIS_URL": None}

    def __call__(self, *args: str, code: int = 0, input: str | None = None, env: dict | None = None):
        result = CliRunner().invoke(gpucloud, list(args), input=input, env=self.env | (env or {}),
                                    catch_exceptions=False)
        assert result.exit_code == code, f"gpucloud {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        return result

    def login(self, token: str):
        return self("login", "--token", token)

    def job(self, *args: str) -> dict:
        """Launches without following; the job record."""
        return json.loads(self("jobs", "run", *args, "--no-follow", "--json").stdout)

    def wait(self, job_id: str, statuses=FINISHED, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = json.loads(self("jobs", "show", job_id, "--json").stdout)
            if job["status"] in statuses or time.monotonic() > deadline:
                return job
            time.sleep(0.3)


@pytest.fixture(scope="module")
def lab(settings, lab_env):
    """The lab's URLs (API, NetBox, Redis) and its platform-admin token."""
    return lab_env | {"ADMIN_TOKEN": (settings.state / "runner-admin-token").read_text().strip()}


@pytest.fixture(scope="module")
def admin(lab, tmp_path_factory):
    cli = Cli(tmp_path_factory.mktemp("admin") / "config.json", lab["GPUCLOUD_API_URL"])
    cli.login(lab["ADMIN_TOKEN"])
    return cli


def issue(admin: Cli, role: str, tenant: str) -> tuple[str, str]:
    """(token id, secret) of a token issued through the CLI."""
    result = admin("admin", "tokens", "issue", "--role", role, "--tenant", tenant, "--description", "test_cli")
    token_id = re.search(r"issued token (\w+)", result.stderr).group(1)
    return token_id, result.stdout.strip()


@pytest.fixture(scope="module")
def operator(admin, lab, tmp_path_factory):
    """A logged-in tenant-operator of acme; its token is revoked afterwards."""
    token_id, token = issue(admin, "tenant-operator", "acme")
    cli = Cli(tmp_path_factory.mktemp("operator") / "config.json", lab["GPUCLOUD_API_URL"])
    cli.login(token)
    cli.token = token
    yield cli
    admin("admin", "tokens", "revoke", token_id)


@pytest.fixture(scope="module")
def acme_nodes(lab) -> list[str]:
    response = requests.get(f"{lab['NETBOX_URL']}/api/dcim/devices/",
                            params={"tenant": "acme", "role": "gpu-server", "limit": 100, "brief": 1},
                            headers={"Authorization": f"Bearer {lab['NETBOX_TOKEN']}"}, timeout=30)
    response.raise_for_status()
    return sorted(d["name"] for d in response.json()["results"])


@pytest.fixture(scope="module")
def finished_job(operator, acme_nodes) -> dict:
    """A successful job that ran on one node, launched with --no-follow."""
    job = operator.job("node_healthcheck", "--limit", acme_nodes[1], "-e", "node_healthcheck_note=from-fixture")
    return operator.wait(job["id"])


def netbox_journal(lab, device: str, text: str) -> list[str]:
    headers = {"Authorization": f"Bearer {lab['NETBOX_TOKEN']}"}
    url = lab["NETBOX_URL"]
    devices = requests.get(f"{url}/api/dcim/devices/", params={"name": device}, headers=headers, timeout=30).json()
    entries = requests.get(f"{url}/api/extras/journal-entries/", headers=headers, timeout=30, params={
        "assigned_object_type": "dcim.device", "assigned_object_id": devices["results"][0]["id"], "q": text}).json()
    return [e["comments"] for e in entries["results"]]


# -- login, config, identity --------------------------------------------------------------------

@pytest.mark.netbox
def test_login_writes_a_private_config_and_whoami_answers(lab, tmp_path):
    cli = Cli(tmp_path / "conf" / "config.json", lab["GPUCLOUD_API_URL"])
    token = lab["ADMIN_TOKEN"]
    result = cli("login", input=f"{token}\n")  # prompted, hidden
    assert "platform-admin" in result.output
    assert token not in result.output
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert json.loads(cli.config.read_text()) == {"url": lab["GPUCLOUD_API_URL"], "token": token}

    who = cli("whoami")
    assert "platform-admin" in who.output and token not in who.output
    assert json.loads(cli("whoami", "--json").stdout)["role"] == "platform-admin"

    cli("logout")
    assert json.loads(cli.config.read_text()) == {"url": lab["GPUCLOUD_API_URL"]}
    assert "gpucloud login" in cli("whoami", code=2).stderr


@pytest.mark.netbox
def test_login_with_a_bad_token_saves_nothing(lab, tmp_path):
    cli = Cli(tmp_path / "config.json", lab["GPUCLOUD_API_URL"])
    result = cli("login", "--token", "gpc_nope_nope", code=2)
    assert "error: unknown or revoked token" in result.stderr
    assert "correlation id" in result.stderr
    assert not cli.config.exists()


def test_not_logged_in_says_how_to_log_in(tmp_path):
    result = Cli(tmp_path / "config.json", "http://127.0.0.1:1")("jobs", "list", code=2)
    assert "not logged in" in result.stderr and "gpucloud login" in result.stderr


def test_unreachable_api_is_one_line_naming_the_url(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cli = Cli(tmp_path / "config.json", url)
    result = cli("whoami", code=2, env={"GPUCLOUD_TOKEN": "gpc_x_y"})
    assert result.stderr.strip().splitlines() == [f"error: cannot reach the gpucloud API at {url} (connection refused)"]
    assert "gpc_x_y" not in result.output
    cli("login", "--url", url, "--token", "gpc_x_y", code=2)
    assert not cli.config.exists()


# -- playbooks and the headline flow ------------------------------------------------------------

@pytest.mark.netbox
def test_playbooks_list(admin):
    out = admin("playbooks", "list").stdout
    assert re.search(r"node_healthcheck\s+tenant-operator", out)
    assert "node_healthcheck_note" in out and "node_healthcheck_soak_seconds" in out
    items = json.loads(admin("playbooks", "list", "--json").stdout)
    assert "node_healthcheck" in {p["name"] for p in items}


@pytest.mark.netbox
def test_tenant_operator_runs_a_healthcheck_live_and_netbox_journals_it(admin, lab, tmp_path, acme_nodes):
    assert HEADLINE_NODE in acme_nodes
    token_id, token = issue(admin, "tenant-operator", "acme")
    assert token.startswith("gpc_")
    operator = Cli(tmp_path / "config.json", lab["GPUCLOUD_API_URL"])
    try:
        assert "tenant-operator of tenant acme" in operator.login(token).output
        tasks = next(p["tasks"] for p in json.loads(operator("playbooks", "list", "--json").stdout)
                     if p["name"] == "node_healthcheck")

        result = operator("jobs", "run", "node_healthcheck", "--limit", HEADLINE_NODE,
                          "-e", "node_healthcheck_note=hello")
        out = result.stdout
        job_id = re.search(rf"job ({UUID}) queued", out).group(1)
        assert re.search(rf"correlation id {UUID}", out)
        for task in ("Preflight | Check the options", "Check that the node answers", "Check the node against NetBox",
                     "Report"):
            assert task in out
        assert f"TASK [1/{tasks}]" in out and f"TASK [{tasks}/{tasks}]" in out  # progress from the catalogue
        assert f"ok: {HEADLINE_NODE}" in out and "hello" in out  # per-host results, the debug message
        assert f"job {job_id} successful" in out
        assert re.search(rf"{HEADLINE_NODE}\s+\d+\s+0\s+0\s+0", out)  # stats: ok, changed 0, failed 0, unreachable 0
        assert token not in result.output

        comments = netbox_journal(lab, HEADLINE_NODE, job_id)
        assert comments and all(job_id in c for c in comments)
        assert "finished **successful**" in comments[0]
    finally:
        admin("admin", "tokens", "revoke", token_id)


@pytest.mark.netbox
def test_validation_errors_name_every_field(operator, acme_nodes):
    result = operator("jobs", "run", "node_healthcheck", "--limit", acme_nodes[0], "--limit", "gpu-nowhere",
                      "-e", "bogus=1", "-e", 'node_healthcheck_note={{ lookup("pipe","id") }}', code=2)
    err = result.stderr
    assert err.startswith("error: invalid input")
    assert "  variables.bogus: unknown variable for node_healthcheck" in err
    assert "  variables.node_healthcheck_note: template delimiters" in err
    assert "  limit[1]: 'gpu-nowhere' is not a node of this tenant" in err
    assert re.search(rf"\(correlation id {UUID}\)", err)
    assert "queued" not in result.stdout


@pytest.mark.netbox
def test_a_failing_job_exits_1_with_its_reason(operator, acme_nodes):
    result = operator("jobs", "run", "node_healthcheck", "--limit", acme_nodes[2], "-e",
                      "node_healthcheck_min_gpus=1000", code=1)
    assert f"failed: {acme_nodes[2]}" in result.stdout
    assert "minimum 1000 GPUs" in result.stdout  # the failed task's message
    assert f"reason: failed on {acme_nodes[2]}" in result.stdout


@pytest.mark.netbox
def test_follows_a_quiet_job_to_its_end(operator, acme_nodes):
    """A task that prints nothing for seconds: the stream may go idle or drop, the follow goes on."""
    result = operator("jobs", "run", "node_healthcheck", "--limit", acme_nodes[4], "-e",
                      "node_healthcheck_soak_seconds=7", "--json")
    job = json.loads(result.stdout)  # following with --json: only the final record
    assert job["status"] == "successful" and job["duration"] >= 7
    assert job["stats"][acme_nodes[4]]["failed"] == 0


# -- jobs list / show / logs / cancel ------------------------------------------------------------

@pytest.mark.netbox
def test_jobs_list_show_and_logs(operator, finished_job, acme_nodes):
    job_id, node = finished_job["id"], acme_nodes[1]
    assert finished_job["status"] == "successful"

    assert job_id in operator("jobs", "list", "--playbook", "node_healthcheck", "--limit", "100").stdout
    page = json.loads(operator("jobs", "list", "--status", "successful", "--limit", "100", "--json").stdout)
    assert job_id in {j["id"] for j in page["items"]}
    assert all(j["tenant"] == "acme" for j in page["items"])

    show = operator("jobs", "show", job_id).stdout
    assert re.search(r"status:\s+successful", show)
    assert re.search(r"journal:\s+journal entries on 1 devices", show)
    assert re.search(rf"{node}\s+\d+\s+0\s+0\s+0", show)  # per-host stats
    assert "from-fixture" in show  # variables

    logs = operator("jobs", "logs", job_id).stdout
    assert "PLAY RECAP" in logs and f"{node} healthy" in logs and "from-fixture" in logs
    followed = operator("jobs", "logs", job_id, "--follow")
    assert followed.stdout == logs
    assert "successful" in followed.stderr


@pytest.mark.netbox
def test_cancel_a_running_soak(operator, acme_nodes):
    job = operator.job("node_healthcheck", "--limit", acme_nodes[3], "-e", "node_healthcheck_soak_seconds=60")
    assert operator.wait(job["id"], ("running",), timeout=20)["status"] == "running"
    assert job["id"] in operator("jobs", "cancel", job["id"]).stdout
    started = time.monotonic()
    final = operator.wait(job["id"], timeout=20)
    assert final["status"] == "canceled", final
    assert time.monotonic() - started < 20
    assert "already finished (canceled)" in operator("jobs", "cancel", job["id"], code=2).stderr


@pytest.mark.netbox
def test_unknown_job_is_a_clear_error(operator):
    assert "error: no job 00000000-0000-0000-0000-000000000000" in operator(
        "jobs", "show", "00000000-0000-0000-0000-000000000000", code=2).stderr


@pytest.mark.netbox
def test_event_stream_resumes_from_last_event_id_after_a_drop(lab, operator, finished_job, monkeypatch):
    api = Api(lab["GPUCLOUD_API_URL"], operator.token)
    whole = [e["id"] for e in stream_events(api, finished_job["id"])]
    sent, real_stream, real_lines = [], Api.stream, sse.response_lines

    def stream(self, path, headers):
        sent.append(dict(headers))
        return real_stream(self, path, headers)

    def lines(response):  # the first connection dies inside the third frame (retry line, blank, 4 lines a frame)
        for number, line in enumerate(real_lines(response)):
            if len(sent) == 1 and number == 12:
                raise requests.exceptions.ChunkedEncodingError("connection dropped")
            yield line

    monkeypatch.setattr(Api, "stream", stream)
    monkeypatch.setattr(sse, "response_lines", lines)
    resumed = [e for e in stream_events(api, finished_job["id"]) if e["event"] != IDLE]
    assert [e["id"] for e in resumed] == whole  # nothing lost, nothing twice
    assert resumed[-1]["event"] == "job_end" and resumed[-1]["status"] == "successful"
    assert "Last-Event-ID" not in sent[0] and sent[1]["Last-Event-ID"] == whole[1]


# -- admin ---------------------------------------------------------------------------------------

@pytest.mark.netbox
def test_revoked_token_gets_a_clear_error(admin, lab, tmp_path):
    token_id, token = issue(admin, "tenant-viewer", "globex")
    listing = admin("admin", "tokens", "list", "--tenant", "globex").stdout
    assert token_id in listing and "tenant-viewer" in listing and "gpc_" not in listing
    viewer = Cli(tmp_path / "config.json", lab["GPUCLOUD_API_URL"])
    viewer.login(token)
    viewer("jobs", "list")
    assert "needs the tenant-operator role" in viewer("jobs", "run", "node_healthcheck", code=2).stderr

    assert token_id in admin("admin", "tokens", "revoke", token_id).stdout
    # Other API processes may answer from their token cache for up to TokenStore.CACHE_SECONDS.
    time.sleep(CACHE_SECONDS + 0.5)
    err = viewer("whoami", code=2).stderr
    assert "error: unknown or revoked token" in err and "gpucloud login" in err
    assert token not in err
    assert token_id not in admin("admin", "tokens", "list", "--tenant", "globex").stdout


@pytest.mark.netbox
def test_admin_tenants_and_audit(admin, operator):
    tenants = json.loads(admin("admin", "tenants", "list", "--json").stdout)
    assert {"acme", "globex", "initech"} <= {t["slug"] for t in tenants}
    assert re.search(r"acme\s+\d+", admin("admin", "tenants", "list").stdout)
    acme = next(t for t in tenants if t["slug"] == "acme")
    same = str(acme["concurrency"])  # set it to what it is: the lab's admission stays as it was
    assert f"acme: concurrency {same}" in admin("admin", "tenants", "set", "acme", "--concurrency", same).stdout
    err = admin("admin", "tenants", "create", "no-such-tenant", code=2).stderr
    assert "  slug: no NetBox tenant has this slug" in err
    assert "this needs the platform-admin role" in operator("admin", "tenants", "create", "x", code=2).stderr

    page = json.loads(admin("admin", "audit", "--action", "tenant.update", "--limit", "5", "--json").stdout)
    assert page["items"] and {r["action"] for r in page["items"]} == {"tenant.update"}
    assert page["items"][0]["target"] == "tenant:acme"
    assert re.search(r"tenant\.update\s+tenant:acme\s+200", admin("admin", "audit", "--tenant", "acme").stdout)


@pytest.mark.netbox
def test_bootstrap_token_mints_a_platform_admin_in_redis(admin, lab, tmp_path):
    cli = Cli(tmp_path / "config.json", lab["GPUCLOUD_API_URL"])
    assert "GPUCLOUD_REDIS_URL" in cli("admin", "bootstrap-token", code=2).stderr
    result = cli("admin", "bootstrap-token", "--description", "test_cli bootstrap",
                 env={"GPUCLOUD_REDIS_URL": lab["GPUCLOUD_REDIS_URL"]})
    token = result.stdout.strip()
    token_id = re.search(r"platform-admin token (\w+)", result.stderr).group(1)
    try:
        assert "platform-admin" in cli("whoami", env={"GPUCLOUD_TOKEN": token}).stdout
    finally:
        admin("admin", "tokens", "revoke", token_id)


# -- pieces that need no lab ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("n=3", ("n", 3)), ("x=true", ("x", True)), ("s=hello", ("s", "hello")), ('q="3"', ("q", "3")),
    ("l=[1, 2]", ("l", [1, 2])), ("e=", ("e", "")), ("t=a=b", ("t", "a=b")),
    ('j={{ lookup("pipe","id") }}', ("j", '{{ lookup("pipe","id") }}')),
])
def test_extra_vars_are_json_when_they_parse(text, expected):
    assert parse_assignment(text) == expected


def test_bad_extra_var_and_vars_files(tmp_path):
    cli = Cli(tmp_path / "config.json", "http://127.0.0.1:1")
    assert "expected KEY=VALUE" in cli("jobs", "run", "x", "-e", "novalue", code=2).stderr
    (tmp_path / "vars.yml").write_text("a: 1\nb: [x]\n")
    (tmp_path / "vars.json").write_text('{"a": 2}')
    (tmp_path / "list.yml").write_text("- 1\n")
    assert load_vars_file(tmp_path / "vars.yml") == {"a": 1, "b": ["x"]}
    assert load_vars_file(tmp_path / "vars.json") == {"a": 2}
    assert "expected a mapping" in cli("jobs", "run", "x", "--vars-file", str(tmp_path / "list.yml"), code=2).stderr


def test_sse_parser():
    parser = SseParser()
    lines = ["retry: 500", "", ": keepalive", "id: 1-0", "event: job_end", 'data: {"a":', "data: 1}", ""]
    frames = [f for f in map(parser.feed, lines) if f]
    assert frames == [(None, IDLE, ""), ("1-0", "job_end", '{"a":\n1}')]
    assert parser.retry == 0.5


def test_terminal_control_characters_are_dropped():
    assert clean("ok\r\n\x1b[2Jgone\x07") == "ok\n[2Jgone"
