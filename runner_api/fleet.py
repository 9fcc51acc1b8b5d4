"""The GPU fleet as NetBox holds it: every GPU server with its hardware, topology and holder.

Placement, quotas and cost all read this one view. Hardware figures come from the device's own
custom fields, falling back to its device type's; the leaf is the switch its data port (eth0) is
cabled to; the pod is the row's parent location when the site groups rows into pods, else the site.
Topology changes rarely, so the leaf map and device types are cached for a minute; who holds which
node is read fresh every time (under the placement lock when it matters).
"""

import threading
import time
from dataclasses import dataclass

from runner_api.placement import Node

SERVER_ROLE = "gpu-server"
FREE_STATUS = "active"
RESERVED_STATUS = "staged"  # reserved for a tenant and being provisioned
DEVICE_FIELDS = "id,name,status,tenant,site,location,device_type,custom_fields,cluster"
HARDWARE = ("gpu_vendor", "gpu_model", "gpu_count", "gpu_memory_gb", "cpu_cores", "memory_gb", "storage_tb",
            "hourly_cost")
TOPOLOGY_TTL = 60.0


@dataclass(frozen=True)
class Held:
    """A server as placement sees it, plus who holds it."""

    node: Node
    tenant: str | None
    project: str | None
    status: str
    cluster: int | None

    @property
    def free(self) -> bool:
        return self.tenant is None and self.status == FREE_STATUS and self.cluster is None


class Fleet:
    """One per process; NetBox calls go through the shared client."""

    def __init__(self, client):
        self.client = client
        self._static: tuple[float, dict, dict, dict] | None = None
        self._lock = threading.Lock()

    def servers(self) -> list[Held]:
        types, leaves, pods = self._topology()
        devices = self.client().list("dcim/devices", page_size=5000, role=SERVER_ROLE, fields=DEVICE_FIELDS)
        return [self._held(d, types, leaves, pods) for d in devices]

    def free_nodes(self) -> list[Node]:
        return [h.node for h in self.servers() if h.free]

    def held_by(self, tenant: str) -> list[Held]:
        devices = self.client().list("dcim/devices", page_size=5000, role=SERVER_ROLE, tenant=tenant,
                                     fields=DEVICE_FIELDS)
        types, leaves, pods = self._topology()
        return [self._held(d, types, leaves, pods) for d in devices]

    def _held(self, device: dict, types: dict, leaves: dict, pods: dict) -> Held:
        cf = device.get("custom_fields") or {}
        own = {k: _plain(cf.get(k)) for k in HARDWARE if cf.get(k) is not None}
        hw = (types.get(device["device_type"]["id"]) or {}) | own
        guids = cf.get("ib_port_guids") or []
        site = device["site"]["slug"] if device.get("site") else ""
        location = (device.get("location") or {}).get("id")
        node = Node(
            name=device["name"], id=device["id"], model=str(hw.get("gpu_model") or ""),
            vendor=str(hw.get("gpu_vendor") or ""), gpus=int(hw.get("gpu_count") or 0),
            gpu_memory_gb=int(hw.get("gpu_memory_gb") or 0),
            nvlink_domain=cf.get("nvlink_domain") or f"node:{device['name']}",
            leaf=leaves.get(device["id"]) or f"unconnected:{device['name']}",
            pod=pods.get(location) or site, site=site, ib=bool(guids),
            cpus=int(hw.get("cpu_cores") or 0), memory_gb=int(hw.get("memory_gb") or 0),
            storage_tb=float(hw.get("storage_tb") or 0), hourly_cost=float(hw.get("hourly_cost") or 0),
        )
        tenant = (device.get("tenant") or {}).get("slug")
        status = (device.get("status") or {}).get("value", "")
        cluster = (device.get("cluster") or {}).get("id")
        return Held(node, tenant, cf.get("project"), status, cluster)

    def _topology(self) -> tuple[dict, dict, dict]:
        with self._lock:
            if self._static and time.monotonic() - self._static[0] < TOPOLOGY_TTL:
                return self._static[1:]
            static = (time.monotonic(), self._device_types(), self._leaves(), self._pods())
            self._static = static
            return static[1:]

    def _device_types(self) -> dict[int, dict]:
        types = self.client().list("dcim/device-types", page_size=1000, fields="id,custom_fields")
        return {t["id"]: {k: _plain(v) for k, v in (t.get("custom_fields") or {}).items()
                          if k in HARDWARE and v is not None} for t in types}

    def _leaves(self) -> dict[int, str]:
        """server device id -> name of the leaf its eth0 is cabled to."""
        ports = self.client().list("dcim/interfaces", page_size=5000, role=SERVER_ROLE, name="eth0", cabled=True,
                                   fields="id,device,link_peers")
        return {p["device"]["id"]: peer["device"]["name"] for p in ports
                for peer in (p.get("link_peers") or [])[:1] if peer.get("device")}

    def _pods(self) -> dict[int, str]:
        """location id -> pod name, for rows that sit inside a parent location."""
        locations = self.client().list("dcim/locations", page_size=5000, fields="id,slug,parent")
        return {loc["id"]: loc["parent"]["slug"] for loc in locations if loc.get("parent")}


def _plain(value):
    """A select custom field reads as {value, label}; the value is what counts."""
    return value.get("value") if isinstance(value, dict) and "value" in value else value
