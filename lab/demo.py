"""The demo: services up, data model and a demo fleet in NetBox, one tenant's inventory graph.

Later stages (job runner, placement, fabric, clusters) extend this same entry point.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from lab.fleet_plan import TENANTS, plan
from lab.seed import ensure_fleet
from lab.settings import Settings
from lab.stack import up

DEMO_TENANT = TENANTS[0][0]


def _inventory(s: Settings, env: dict, tenant: str | None, *args: str) -> str:
    exe = Path(sys.executable).parent / "ansible-inventory"
    run_env = {**os.environ, **env, "GPUCLOUD_TENANT": tenant or ""}
    proc = subprocess.run([str(exe), "-i", "inventory/fleet.gpucloud_netbox.yml", *args], cwd=s.repo,
                          env=run_env, capture_output=True, text=True, check=True)
    return proc.stdout


def run(s: Settings, nodes: int) -> None:
    started = time.monotonic()
    print("== 1. lab services")
    env = up(s)
    print(f"== 2. data model and a {nodes}-node demo fleet in NetBox")
    print("  " + ensure_fleet(s, env, nodes))
    fleet = plan(nodes)
    by_tenant = Counter(srv.tenant or "(free)" for srv in fleet.servers)
    by_model = Counter(srv.device_type for srv in fleet.servers)
    print(f"  {len(fleet.servers)} GPU servers in {len(fleet.sites)} sites, {len(fleet.rows)} rows, "
          f"{len(fleet.racks)} racks; {len(fleet.switches)} switches; {len(fleet.cables)} cables")
    print("  by tenant: " + ", ".join(f"{t}={n}" for t, n in sorted(by_tenant.items())))
    print("  by model:  " + ", ".join(f"{m}={n}" for m, n in sorted(by_model.items())))
    print(f"== 3. tenant '{DEMO_TENANT}' inventory graph (gpucloud_netbox plugin, tenant-scoped)")
    t0 = time.monotonic()
    graph = _inventory(s, env, DEMO_TENANT, "--graph")
    cold = time.monotonic() - t0
    t0 = time.monotonic()
    _inventory(s, env, DEMO_TENANT, "--graph")
    warm = time.monotonic() - t0
    print(graph.rstrip())
    print(f"  ansible-inventory: cold {cold:.2f}s, warm (nothing changed, from cache) {warm:.2f}s")
    print(f"demo done in {time.monotonic() - started:.0f}s. NetBox UI: {s.netbox_url}  "
          f"(source {s.env_file} to use the playbooks)")
