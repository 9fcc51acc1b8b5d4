"""Seed NetBox with the data model and a demo fleet, through a cache of populated dumps.

Generating thousands of servers takes minutes; restoring a dump takes seconds. A dump's name
carries a hash of everything that shapes its content (generator, data model, NetBox version),
so a change to any of them makes a new one rather than restoring a stale fleet.
"""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import redis
import yaml

from lab import bmc_emulator, netbox_server, node_host, postgres
from lab.fleet import apply
from lab.fleet_plan import plan
from lab.proc import LabError
from lab.settings import Settings

COLLECTION = Path("collections/ansible_collections/gpucloud/infra/plugins/module_utils")
SHAPING_FILES = ["lab/fleet.py", "lab/fleet_plan.py", str(COLLECTION / "datamodel.py"),
                 str(COLLECTION / "netbox_reconcile.py"), "roles/netbox_datamodel/defaults/main.yml"]


def fleet_key(s: Settings) -> str:
    digest = hashlib.sha256(s.netbox_version.encode())
    for rel in SHAPING_FILES:
        digest.update((s.repo / rel).read_bytes())
    return digest.hexdigest()[:12]


def fleet_dump(s: Settings, nodes: int) -> Path:
    return s.dumps / f"fleet-{fleet_key(s)}-n{nodes}.dump"


def restore(s: Settings, dump: Path) -> None:
    postgres.restore(s, dump)
    # NetBox caches configuration revisions and object counts in Redis db 1; a restored
    # database must not be served with another database's cache.
    redis.Redis(host="127.0.0.1", port=s.redis_port, db=1).flushdb()


def bootstrap(s: Settings, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess:
    """Apply the data model by running the real playbook, as an operator would."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/netbox_bootstrap.yml"]
    if check:
        cmd += ["--check", "--diff"]
    proc = subprocess.run(cmd, cwd=s.repo, env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"netbox_bootstrap.yml failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return proc


def ensure_fleet(s: Settings, env: dict[str, str], nodes: int, fresh: bool = False) -> str:
    """Make NetBox hold exactly the data model and an N-node demo fleet, and the fleet's BMCs answer Redfish."""
    message = _ensure_netbox_fleet(s, env, nodes, fresh)
    bmc_emulator.ensure_running(s, bmc_emulator.bmcs_for(s, plan(nodes)))
    node_host.ensure_gpu_devices(s, gpu_servers(s, nodes))
    return message


def gpu_servers(s: Settings, nodes: int) -> list[dict]:
    """{name, gpu_vendor, gpu_count} of every server of the N-node fleet, from the data model's device types."""
    defaults = yaml.safe_load((s.repo / "roles/netbox_datamodel/defaults/main.yml").read_text())
    gpus = {t["slug"]: t.get("gpu") or {} for t in defaults["netbox_datamodel_device_types"]}
    return [{"name": server.name, "gpu_vendor": gpus[server.device_type].get("vendor"),
             "gpu_count": gpus[server.device_type].get("count")} for server in plan(nodes).servers]


def _ensure_netbox_fleet(s: Settings, env: dict[str, str], nodes: int, fresh: bool) -> str:
    from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox

    dump = fleet_dump(s, nodes)
    if dump.exists() and not fresh:
        restore(s, dump)
        return f"restored {nodes}-node fleet from {dump.name}"
    started = time.monotonic()
    restore(s, netbox_server.migrated_dump(s))
    bootstrap(s, env)
    apply(NetBox(env["NETBOX_URL"], env["NETBOX_TOKEN"], timeout=600), plan(nodes))
    postgres.dump(s, dump)
    return f"generated {nodes}-node fleet in {time.monotonic() - started:.1f}s (cached as {dump.name})"
