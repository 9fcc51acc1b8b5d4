"""gpucloud.infra.credential: env, file and Vault KV v2 references; errors name the reference, never the secret."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleLookupError

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.lookup import credential
from ansible_collections.gpucloud.infra.plugins.lookup.credential import CredentialError, LookupModule, resolve

REPO = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-Pa55"


@pytest.fixture
def vault():
    """A tiny stand-in for Vault's KV v2 read API that records what it was asked."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({"path": self.path, "headers": dict(self.headers)})
            if self.headers.get("X-Vault-Token") != "tok-123":
                return self._send(403, {"errors": ["permission denied"]})
            if self.path == "/v1/secret/data/bmc/dc1":
                return self._send(200, {"data": {"data": {"password": SECRET, "user": "admin"},
                                                 "metadata": {"version": 3}}})
            return self._send(404, {"errors": []})

        def _send(self, status, body):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


NAME = "gpucloud.infra.credential"


@pytest.fixture(scope="module", autouse=True)
def plugin_options():
    """What Ansible's loader does: register the plugin's options (env fallbacks included) from DOCUMENTATION."""
    C.config.initialize_plugin_configuration_definitions("lookup", NAME,
                                                          yaml.safe_load(credential.DOCUMENTATION)["options"])


def lookup(terms, **options):
    plugin = LookupModule()
    plugin._load_name = NAME
    return plugin.run(terms, variables={}, **options)


def test_env_reference(monkeypatch):
    monkeypatch.setenv("GPUCLOUD_TEST_BMC_PW", SECRET)
    assert lookup(["env:GPUCLOUD_TEST_BMC_PW"]) == [SECRET]


def test_missing_or_empty_env_variable_names_the_reference(monkeypatch):
    monkeypatch.delenv("GPUCLOUD_TEST_NOPE", raising=False)
    with pytest.raises(AnsibleLookupError, match=r"'env:GPUCLOUD_TEST_NOPE'.*GPUCLOUD_TEST_NOPE is not set"):
        lookup(["env:GPUCLOUD_TEST_NOPE"])
    monkeypatch.setenv("GPUCLOUD_TEST_NOPE", "")
    with pytest.raises(AnsibleLookupError, match="is empty"):
        lookup(["env:GPUCLOUD_TEST_NOPE"])


def test_file_reference_is_stripped(tmp_path):
    path = tmp_path / "pw"
    path.write_text(f"  {SECRET}\n\n")
    assert lookup([f"file:{path}"]) == [SECRET]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AnsibleLookupError, match=rf"'file:{tmp_path}/nope'.*does not exist"):
        lookup([f"file:{tmp_path}/nope"])
    with pytest.raises(AnsibleLookupError, match="is a directory"):
        lookup([f"file:{tmp_path}"])
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(AnsibleLookupError, match="is empty"):
        lookup([f"file:{tmp_path}/empty"])


@pytest.mark.parametrize("ref", ["ldap:cn=bmc", "plainpassword", "env:", ""])
def test_unknown_scheme_or_malformed_reference(ref):
    with pytest.raises(AnsibleLookupError, match="credential reference"):
        lookup([ref])


def test_vault_kv2_url_and_headers(vault):
    addr, seen = vault
    got = lookup(["vault:secret/bmc/dc1#password"], vault_addr=addr + "/", vault_token="tok-123",
                 vault_namespace="team-a")
    assert got == [SECRET]
    assert seen[-1]["path"] == "/v1/secret/data/bmc/dc1"
    assert seen[-1]["headers"]["X-Vault-Token"] == "tok-123"
    assert seen[-1]["headers"]["X-Vault-Namespace"] == "team-a"


def test_vault_uses_the_environment(vault, monkeypatch):
    addr, seen = vault
    monkeypatch.setenv("VAULT_ADDR", addr)
    monkeypatch.setenv("VAULT_TOKEN", "tok-123")
    monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
    assert lookup(["vault:secret/bmc/dc1#user"]) == ["admin"]
    assert "X-Vault-Namespace" not in seen[-1]["headers"]


def test_vault_errors_name_the_reference_not_the_secret(vault):
    addr, _ = vault
    opts = {"addr": addr, "token": "tok-123"}
    cases = [
        ("vault:secret/bmc/dc1#nokey", opts, r"no key 'nokey' \(keys: password, user\)"),
        ("vault:secret/bmc/other#password", opts, "no secret at secret/data/bmc/other"),
        ("vault:secret/bmc/dc1#password", {"addr": addr, "token": "wrong"}, "refused the token"),
        ("vault:secret/bmc/dc1#password", {"addr": addr, "token": None}, "no Vault token"),
        ("vault:secret/bmc/dc1#password", {"addr": None, "token": "t"}, "no Vault address"),
        ("vault:secret#password", opts, "expected vault:<mount>/<path>#<key>"),
        ("vault:secret/bmc/dc1", opts, "expected vault:<mount>/<path>#<key>"),
        ("vault:secret/bmc/dc1#password", {"addr": "http://127.0.0.1:9", "token": "t"}, "unreachable"),
    ]
    for ref, vault_opts, message in cases:
        with pytest.raises(CredentialError, match=message) as info:
            resolve(ref, vault_opts)
        assert ref in str(info.value)
        assert SECRET not in str(info.value)


def test_vault_request_url():
    assert credential.vault_request("kv/a/b/c#k", "https://v:8200/") == ("https://v:8200/v1/kv/data/a/b/c", "k")


def test_the_lookup_through_ansible():
    """ansible-doc renders the documentation, and a failing reference's error names it without a secret."""
    bin_dir = Path(sys.executable).parent
    doc = subprocess.run([str(bin_dir / "ansible-doc"), "-t", "lookup", "gpucloud.infra.credential"], cwd=REPO,
                         capture_output=True, text=True)
    assert doc.returncode == 0, doc.stderr
    assert "vault:" in doc.stdout
    proc = subprocess.run([str(bin_dir / "ansible"), "localhost", "-m", "ansible.builtin.debug", "-a",
                           "msg={{ lookup('gpucloud.infra.credential', 'env:GPUCLOUD_TEST_UNSET_VAR') }}"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "env:GPUCLOUD_TEST_UNSET_VAR" in proc.stdout + proc.stderr
