"""Per-tenant OIDC: a tenant's own issuer signs its users' JWTs; everything else is refused."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = pytest.mark.netbox

ISSUER = "https://idp.acme.example/realms/gpu"
AUDIENCE = "gpucloud-acme"


def keypair(kid: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, public | {"kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def signer():
    return keypair("acme-1")


@pytest.fixture(scope="module")
def stranger():
    return keypair("acme-1")  # same kid, different key: a forger's


def token(key, kid="acme-1", **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 300, "iat": now,
            "gpucloud_role": "tenant-operator"} | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_token(header: dict, claims: dict, secret: bytes) -> str:
    """Hand-made, since PyJWT itself refuses to sign with a public key as HMAC secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def acme_oidc(client, tokens, signer):
    body = {"issuer": ISSUER, "audience": AUDIENCE, "jwks": {"keys": [signer[1]]}}
    response = client.put("/v1/tenants/acme/oidc", json=body, headers=tokens["acme-admin"])
    assert response.status_code == 200, response.json
    yield
    client.delete("/v1/tenants/acme/oidc", headers=tokens["acme-admin"])


def test_valid_jwt_is_scoped_to_its_tenant(client, acme_oidc, signer):
    who = client.get("/v1/whoami", headers=bearer(token(signer[0])))
    assert who.status_code == 200
    assert who.json == {"subject": "oidc:alice", "role": "tenant-operator", "tenant": "acme", "via": "oidc"}
    jobs = client.get("/v1/jobs?limit=500", headers=bearer(token(signer[0]))).json["items"]
    assert all(job["tenant"] == "acme" for job in jobs)


@pytest.mark.parametrize(("claims", "why"), [
    ({"aud": "someone-else"}, "Audience"),
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"iss": "https://idp.acme.example/realms/other"}, "issuer"),
    ({"exp": None}, "exp"),
    ({"gpucloud_role": "platform-admin"}, "role"),
    ({"gpucloud_role": None}, "role"),
])
def test_bad_claims_are_refused(client, acme_oidc, signer, claims, why):
    response = client.get("/v1/whoami", headers=bearer(token(signer[0], **claims)))
    assert response.status_code == 401, response.json
    assert why.lower() in response.json["detail"].lower() or "issuer" in response.json["detail"]


def test_forged_signatures_are_refused(client, acme_oidc, signer, stranger):
    assert client.get("/v1/whoami", headers=bearer(token(stranger[0]))).status_code == 401
    # alg=none and HS256 keyed with the public key (the classic confusion attack).
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "eve", "exp": int(time.time()) + 60,
                           "gpucloud_role": "tenant-admin"}, None, algorithm="none")
    assert client.get("/v1/whoami", headers=bearer(unsigned)).status_code == 401
    pem = signer[0].public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = hmac_token({"alg": "HS256", "typ": "JWT", "kid": "acme-1"},
                          {"iss": ISSUER, "aud": AUDIENCE, "sub": "eve", "exp": int(time.time()) + 60,
                           "gpucloud_role": "tenant-admin"}, pem)
    assert client.get("/v1/whoami", headers=bearer(confused)).status_code == 401


def test_jwt_of_an_unregistered_issuer_is_refused(client, signer):
    response = client.get("/v1/whoami", headers=bearer(token(signer[0])))
    assert response.status_code == 401 and "not registered" in response.json["detail"]


def test_registration_is_validated(client, tokens):
    bad = client.put("/v1/tenants/acme/oidc", headers=tokens["acme-admin"], json={
        "issuer": "http://idp.example.com", "audience": "x", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        "jwks_uri": "ftp://x"})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json["errors"]}
    assert {"issuer", "jwks_uri", "jwks"} <= fields
    operator = client.put("/v1/tenants/acme/oidc", headers=tokens["acme-operator"],
                          json={"issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": "https://idp.acme.example/k"})
    assert operator.status_code == 403


def test_issuer_cannot_be_claimed_by_two_tenants(client, tokens, acme_oidc, signer):
    response = client.put("/v1/tenants/globex/oidc", headers=tokens["globex-admin"],
                          json={"issuer": ISSUER, "audience": "globex", "jwks": {"keys": [signer[1]]}})
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "issuer"


def test_plain_http_is_refused_unless_the_lab_allows_loopback(runner_settings, tokens):
    from dataclasses import replace

    from runner_api import create_app

    strict = create_app(replace(runner_settings, oidc_allow_http_loopback=False)).test_client()
    response = strict.put("/v1/tenants/acme/oidc", headers=tokens["acme-admin"], json={
        "issuer": "http://127.0.0.1:9/realms/acme", "audience": "x", "jwks_uri": "http://127.0.0.1:9/certs"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"issuer", "jwks_uri"}


def test_jwks_uri_is_fetched_and_cached(client, tokens):
    key, public = keypair("uri-1")
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps({"keys": [public]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{server.server_port}/realms/globex"
    try:
        registered = client.put("/v1/tenants/globex/oidc", headers=tokens["globex-admin"], json={
            "issuer": issuer, "audience": "gpucloud-globex",
            "jwks_uri": f"http://127.0.0.1:{server.server_port}/certs", "default_role": "tenant-viewer"})
        assert registered.status_code == 200, registered.json
        signed = token(key, kid="uri-1", iss=issuer, aud="gpucloud-globex", gpucloud_role=None)
        for _ in range(3):
            who = client.get("/v1/whoami", headers=bearer(signed))
            assert who.status_code == 200 and who.json["tenant"] == "globex" and who.json["role"] == "tenant-viewer"
        assert len(hits) == 1
    finally:
        client.delete("/v1/tenants/globex/oidc", headers=tokens["globex-admin"])
        server.shutdown()
