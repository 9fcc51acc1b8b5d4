# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A small NetBox REST/GraphQL client shared by the modules, the inventory plugin and the lab.

One requests.Session per client (keep-alive matters: thousands of calls), bulk create/update,
pagination, and errors that say in one line what went wrong and where.
"""

from __future__ import annotations

import json
import os

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    HAS_REQUESTS = True
except ImportError:  # reported by the caller with missing_required_lib()
    HAS_REQUESTS = False

DEFAULT_TIMEOUT = 60
# The modules' connection options (documented once, in doc_fragments/netbox.py).
CONNECTION_ARGS = {"url": {"type": "str"}, "token": {"type": "str", "no_log": True},
                   "validate_certs": {"type": "bool", "default": True}}
BULK_CHUNK = 500


class NetBoxError(Exception):
    """Any failure talking to NetBox; str() is a one-line explanation, status the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def auth_header(token: str) -> str:
    """v2 tokens ('nbt_<key>.<secret>') are sent as Bearer, legacy v1 tokens as 'Token'."""
    scheme = "Bearer" if token.startswith("nbt_") else "Token"
    return f"{scheme} {token}"


class NetBox:
    def __init__(self, url: str, token: str, timeout: int = DEFAULT_TIMEOUT, verify: bool = True,
                 pool_size: int = 8):
        if not url:
            raise NetBoxError("no NetBox URL given (set NETBOX_URL or the url option)")
        if not token:
            raise NetBoxError("no NetBox API token given (set NETBOX_TOKEN or the token option)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        # A pooled keep-alive connection the server has just closed (gunicorn recycles workers and drops idle
        # connections) fails the next request on it; idempotent requests are sent again on a fresh one. POST is
        # not: NetBox may have created the object before the connection broke.
        retries = Retry(total=3, connect=3, read=2, other=0, status=0, backoff_factor=0.1, raise_on_status=False,
                        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}))
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retries)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({
            "Authorization": auth_header(token),
            "Accept": "application/json",
            "Content-Type": "application/json",
        })

    # -- transport ---------------------------------------------------------------------------
    def request(self, method: str, path: str, params: dict | None = None, payload=None):
        url = path if path.startswith("http") else f"{self.url}/api/{path.strip('/')}/"
        try:
            resp = self.session.request(method, url, params=params, timeout=self.timeout,
                                        data=None if payload is None else json.dumps(payload))
        except requests.exceptions.SSLError as exc:
            raise NetBoxError(f"TLS error talking to NetBox at {self.url}: {exc}") from None
        except requests.exceptions.ConnectionError:
            raise NetBoxError(f"NetBox at {self.url} is unreachable (connection refused or no route)") from None
        except requests.exceptions.Timeout:
            raise NetBoxError(f"NetBox at {self.url} did not answer within {self.timeout}s") from None
        return self._decode(method, url, resp)

    def _decode(self, method: str, url: str, resp):
        if resp.status_code in (401, 403):
            detail = _detail(resp) or "permission denied"
            raise NetBoxError(f"NetBox rejected the API token ({resp.status_code}: {detail}); "
                              "check NETBOX_TOKEN and its permissions", resp.status_code)
        if resp.status_code == 404:
            raise NetBoxError(f"NetBox has no {url.replace(self.url, '')} (404); check the URL and NetBox version",
                              404)
        if resp.status_code >= 400:
            raise NetBoxError(f"NetBox refused {method} {url.replace(self.url, '')} "
                              f"({resp.status_code}): {_detail(resp)}", resp.status_code)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise NetBoxError(f"NetBox at {self.url} answered {url} with something that is not JSON; "
                              "is this the NetBox URL?") from None

    # -- REST helpers --------------------------------------------------------------------------
    def get(self, path: str, **params):
        return self.request("GET", path, params=params)

    def list(self, path: str, page_size: int = 1000, **params) -> list[dict]:
        """Every object of an endpoint, following NetBox's pagination."""
        params = {"limit": page_size, **params}
        out: list[dict] = []
        page = self.request("GET", path, params=params)
        while True:
            out.extend(page["results"])
            if not page.get("next"):
                return out
            page = self.request("GET", page["next"])

    def create(self, path: str, objects: list[dict]) -> list[dict]:
        created: list[dict] = []
        for start in range(0, len(objects), BULK_CHUNK):
            created.extend(self.request("POST", path, payload=objects[start:start + BULK_CHUNK]))
        return created

    def update(self, path: str, objects: list[dict]) -> list[dict]:
        """Bulk PATCH; every object carries its 'id'."""
        updated: list[dict] = []
        for start in range(0, len(objects), BULK_CHUNK):
            updated.extend(self.request("PATCH", path, payload=objects[start:start + BULK_CHUNK]))
        return updated

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = self.request("POST", f"{self.url}/graphql/", payload={"query": query, "variables": variables or {}})
        if body.get("errors"):
            messages = "; ".join(e.get("message", str(e)) for e in body["errors"][:3])
            raise NetBoxError(f"NetBox GraphQL query failed: {messages}")
        return body["data"]


def _detail(resp) -> str:
    """NetBox error bodies are {'detail': ...}, {'field': [...]}, or a list of those for bulk calls."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200].strip()
    if isinstance(body, dict) and "detail" in body:
        # Bulk writes are atomic and list each failing object by its index in the request.
        per_object = "; ".join(f"[{e.get('index')}] {json.dumps(e.get('errors'), sort_keys=True)}"
                               for e in body.get("errors", [])[:5])
        return f"{body['detail']} {per_object}".strip()
    if isinstance(body, list):
        body = {f"[{i}]": item for i, item in enumerate(body) if item}
    return json.dumps(body, sort_keys=True)[:600]


def from_params(params: dict) -> NetBox:
    """The client for a module's connection options, the environment filling what they leave out."""
    return NetBox(params["url"] or os.environ.get("NETBOX_URL", ""),
                  params["token"] or os.environ.get("NETBOX_TOKEN", ""), verify=params["validate_certs"])
