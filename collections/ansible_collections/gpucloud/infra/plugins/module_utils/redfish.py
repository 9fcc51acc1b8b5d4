# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A small Redfish client for BMCs: one keep-alive TLS connection per BMC, discovery of the system and its BIOS.

Used by the controller-side action plugins (no module subprocess per host). Built on the standard
library (http.client + ssl) on purpose: Ansible forks a worker per host and imports the action plugin
there, and `requests` alone cost ~170 ms of imports per host at fleet scale. One SSL context per CA
bundle is shared by every BMC in the process, and the environment (REQUESTS_CA_BUNDLE, proxies) is
never consulted: the CA is always explicit, so verify=False or a given CA path means exactly that.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time

JSON = "application/json"
_CONTEXTS: dict = {}
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.BadStatusLine)


class RedfishError(Exception):
    """Any failure talking to a BMC; str() names the BMC and what went wrong."""

    def __init__(self, message: str, status: int | None = None, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


def message_ids(body: dict) -> list[str]:
    """MessageIds of a Redfish error or @Message.ExtendedInfo body."""
    info = (body.get("error") or {}).get("@Message.ExtendedInfo") or body.get("@Message.ExtendedInfo") or []
    return [i.get("MessageId", "") for i in info if isinstance(i, dict)]


def messages(body: dict) -> str:
    info = (body.get("error") or {}).get("@Message.ExtendedInfo") or body.get("@Message.ExtendedInfo") or []
    text = "; ".join(i.get("Message", i.get("MessageId", "")) for i in info if isinstance(i, dict))
    return text or (body.get("error") or {}).get("message", "")


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One context per CA bundle per process: loading the bundle per connection cost ~0.6 ms each."""
    if verify not in _CONTEXTS:
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        _CONTEXTS[verify] = context
    return _CONTEXTS[verify]


class Response:
    def __init__(self, status: int, reason: str, headers):
        self.status_code = status
        self.reason = reason
        self.headers = headers


class Redfish:
    def __init__(self, address: str, username: str, password: str, port: int = 443, verify: bool | str = True,
                 timeout: float = 30.0):
        host = address.removeprefix("https://").rstrip("/")
        self.host, _, explicit_port = host.partition(":") if host.count(":") == 1 else (host, "", "")
        self.port = int(explicit_port or port)
        self.address = address
        self.timeout = timeout
        self.context = ssl_context(verify)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Accept": JSON, "OData-Version": "4.0", "Authorization": f"Basic {token}"}
        self._conn: http.client.HTTPSConnection | None = None
        self._cache: dict[str, dict] = {}

    # -- transport --------------------------------------------------------------------------
    def _connection(self) -> tuple[http.client.HTTPSConnection, bool]:
        if self._conn is not None:
            return self._conn, True
        self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        return self._conn, False

    def request(self, method: str, path: str, payload: dict | None = None, headers: dict | None = None):
        body = None if payload is None else json.dumps(payload).encode()
        sent = self.headers | ({"Content-Type": JSON} if body is not None else {}) | (headers or {})
        while True:
            conn, reused = self._connection()
            try:
                conn.request(method, path, body=body, headers=sent)
                resp = conn.getresponse()
                data = resp.read()
            except STALE as exc:
                self.close()
                if reused:  # a keep-alive connection the BMC had closed: once more on a fresh one
                    continue
                raise RedfishError(f"BMC {self.address} unreachable: {_short(exc)}") from None
            except ssl.SSLError as exc:
                self.close()
                raise RedfishError(f"BMC {self.address}: TLS error ({_short(exc)}); check the CA bundle") from None
            except OSError as exc:  # refused, no route, timeout
                self.close()
                raise RedfishError(f"BMC {self.address} unreachable: {_short(exc)}") from None
            if resp.will_close:
                self.close()
            break
        parsed = _json(data)
        if resp.status == 401:
            raise RedfishError(f"BMC {self.address} refused the credentials (401)", 401, parsed)
        if resp.status >= 400:
            detail = messages(parsed) or resp.reason
            raise RedfishError(f"BMC {self.address}: {method} {path} failed ({resp.status}): {detail}",
                               resp.status, parsed)
        return Response(resp.status, resp.reason, resp.headers), parsed

    def get(self, path: str, cached: bool = False) -> dict:
        if cached and path in self._cache:
            return self._cache[path]
        _, body = self.request("GET", path)
        self._cache[path] = body
        return body

    def patch(self, path: str, payload: dict, etag: str | None = None):
        return self.request("PATCH", path, payload, {"If-Match": etag} if etag else None)

    def post(self, path: str, payload: dict):
        return self.request("POST", path, payload)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- discovery ------------------------------------------------------------------------
    def system_uri(self) -> str:
        members = self.get("/redfish/v1/Systems", cached=True).get("Members") or []
        if not members:
            raise RedfishError(f"BMC {self.address} lists no computer system")
        return members[0]["@odata.id"]

    def system(self) -> dict:
        return self.get(self.system_uri())

    def bios_uri(self, system: dict) -> str:
        link = (system.get("Bios") or {}).get("@odata.id")
        if not link:
            raise RedfishError(f"BMC {self.address}: the system exposes no Bios resource")
        return link

    def settings_uri(self, bios: dict) -> str:
        """Where pending values live and PATCHes go; the Bios resource itself when none is advertised."""
        settings = (bios.get("@Redfish.Settings") or {}).get("SettingsObject") or {}
        return settings.get("@odata.id") or bios["@odata.id"]

    def registry(self, bios: dict) -> dict | None:
        """The BIOS AttributeRegistry named by the Bios resource, or None when the BMC has none.

        Registry files are matched by Id or Registry name; BMCs disagree on the exact spelling (the
        emulator names 'BiosAttributeRegistryP89.v1_0_0' in Bios but files it as
        'BiosAttributeRegistry.v1_0_0'), so a lone BIOS registry file is taken as the one meant."""
        name = bios.get("AttributeRegistry")
        if not name:
            return None
        try:
            members = self.get("/redfish/v1/Registries", cached=True).get("Members") or []
        except RedfishError:
            return None
        files = [self.get(m["@odata.id"], cached=True) for m in members if "bios" in m.get("@odata.id", "").lower()]
        exact = [f for f in files if name in (f.get("Id"), f.get("Registry"))]
        chosen = exact or (files if len(files) == 1 else [])
        for location in (chosen[0].get("Location") or []) if chosen else []:
            if location.get("Uri"):
                return self.get(location["Uri"], cached=True)
        return None

    def reset(self, system: dict, reset_type: str = "ForceRestart") -> None:
        action = ((system.get("Actions") or {}).get("#ComputerSystem.Reset") or {})
        target = action.get("target") or f"{system['@odata.id']}/Actions/ComputerSystem.Reset"
        allowed = action.get("ResetType@Redfish.AllowableValues")
        if allowed and reset_type not in allowed:
            reset_type = "GracefulRestart" if "GracefulRestart" in allowed else allowed[0]
        self.post(target, {"ResetType": reset_type})

    def wait_powered_on(self, timeout: float, poll: float = 2.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                system = self.system()
                if system.get("PowerState") == "On":
                    return system
            except RedfishError:
                pass  # a BMC may drop requests while the host resets
            if time.monotonic() > deadline:
                raise RedfishError(f"BMC {self.address}: the system did not come back within {timeout:.0f} s")
            time.sleep(poll)


def _json(data: bytes) -> dict:
    if not data:
        return {}
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."
