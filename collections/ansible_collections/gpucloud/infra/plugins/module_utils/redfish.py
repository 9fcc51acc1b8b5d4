# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""A small Redfish client for BMCs: one TLS session per BMC, discovery of the system and its BIOS.

Used by the controller-side action plugins (no module subprocess per host). Requests never read
REQUESTS_CA_BUNDLE or proxies from the environment (trust_env off): the CA is always explicit, so
verify=False or a given CA path means exactly that.
"""

from __future__ import annotations

import time

import requests
from requests.adapters import HTTPAdapter

JSON = "application/json"


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


class Redfish:
    def __init__(self, address: str, username: str, password: str, port: int = 443, verify: bool | str = True,
                 timeout: float = 30.0):
        base = address if address.startswith("https://") else f"https://{address}"
        self.base = base if port == 443 or base.count(":") > 1 else f"{base}:{port}"
        self.address = address
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = verify
        self.session.auth = (username, password)
        self.session.headers.update({"Accept": JSON, "OData-Version": "4.0"})
        self.session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0))
        self._cache: dict[str, dict] = {}

    # -- transport --------------------------------------------------------------------------
    def request(self, method: str, path: str, payload: dict | None = None, headers: dict | None = None):
        url = path if path.startswith("https://") else f"{self.base}{path}"
        try:
            resp = self.session.request(method, url, json=payload, timeout=self.timeout, headers=headers)
        except requests.exceptions.SSLError as exc:
            raise RedfishError(f"BMC {self.address}: TLS error ({_short(exc)}); check the CA bundle") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RedfishError(f"BMC {self.address} unreachable: {_short(exc)}") from None
        body = _json(resp)
        if resp.status_code == 401:
            raise RedfishError(f"BMC {self.address} refused the credentials (401)", 401, body)
        if resp.status_code >= 400:
            detail = messages(body) or resp.reason
            raise RedfishError(f"BMC {self.address}: {method} {path} failed ({resp.status_code}): {detail}",
                               resp.status_code, body)
        return resp, body

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
        self.session.close()

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


def _json(resp) -> dict:
    if not resp.content:
        return {}
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."
