"""A tenant's nodes as NetBox lists them: names and device ids, cached for a few seconds.

The API needs them to check launch limits and to know which nodes a job will lock; the worker's
ansible-runner run reads the same tenant-scoped inventory through the inventory plugin.
"""

import threading
import time

from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox, NetBoxError
from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_inventory import (
    InventoryQuery,
    build_hosts,
    fetch,
)
from runner_api.errors import ServiceUnavailable

SERVER_ROLES = ["gpu-server"]


class NetBoxUnavailable(ServiceUnavailable):
    pass


def netbox_client(settings) -> NetBox:
    return NetBox(settings.netbox_url, settings.netbox_token, timeout=settings.netbox_timeout)


class TenantInventory:
    """Per-process cache with single flight: concurrent requests for one tenant share one NetBox fetch."""

    def __init__(self, settings):
        self.settings = settings
        self._cache: dict[str, tuple[float, dict[str, int]]] = {}
        self._flights: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._client = None

    def nodes(self, tenant: str) -> dict[str, int]:
        """host name -> NetBox device id, for the tenant's servers."""
        hit = self._fresh(tenant)
        if hit is not None:
            return hit
        with self._lock:
            flight = self._flights.setdefault(tenant, threading.Lock())
        with flight:
            hit = self._fresh(tenant)  # another thread may have fetched it while we waited
            if hit is not None:
                return hit
            nodes = self._fetch(tenant)
            with self._lock:
                self._cache[tenant] = (time.monotonic(), nodes)
            return nodes

    def _fresh(self, tenant: str) -> dict[str, int] | None:
        with self._lock:
            hit = self._cache.get(tenant)
        if hit and time.monotonic() - hit[0] < self.settings.inventory_ttl:
            return hit[1]
        return None

    def client(self) -> NetBox:
        """One NetBox session per process (readiness probes and lookups reuse it)."""
        if self._client is None:
            self._client = netbox_client(self.settings)
        return self._client

    def _fetch(self, tenant: str) -> dict[str, int]:
        try:
            raw = fetch(self.client(), InventoryQuery(tenant, SERVER_ROLES, interfaces=False))
        except NetBoxError as exc:
            raise NetBoxUnavailable(f"NetBox is unavailable, so the tenant's nodes cannot be checked: {exc}") from None
        return {name: host["netbox_id"] for name, host in build_hosts(raw).items()}
