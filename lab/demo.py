"""The demo: services up, data model and a demo fleet in NetBox, one tenant's inventory graph, and a
tenant job launched through the `gpucloud` CLI, streamed live and traced in NetBox's journal.

Later stages (placement, clusters) extend this same entry point.
"""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

from lab.demo_image import golden_image
from lab.demo_network import tenant_networks
from lab.demo_schedulers import kubernetes
from lab.demo_tenants import tenant_product
from lab.fleet_plan import TENANTS, plan
from lab.proc import recap_summary
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
    run_job(s, env, sorted(srv.name for srv in fleet.servers if srv.tenant == DEMO_TENANT)[:2])
    tune_bios(s, env, fleet)
    golden_image(s, env, fleet)
    tenant_networks(s, env, fleet)
    tenant_product(s, env)
    kubernetes(s, env)
    print(f"demo done in {time.monotonic() - started:.0f}s. NetBox UI: {s.netbox_url}  "
          f"(source {s.env_file} to use the playbooks)")


def _cli(s: Settings, env: dict, config: Path, *args: str, capture: bool = False) -> str:
    """The tenant's view: the gpucloud CLI with its own config file."""
    cli_env = {**os.environ, **env, "GPUCLOUD_CONFIG": str(config)}
    cli_env.pop("GPUCLOUD_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "runner_api.cli", *args], cwd=s.repo, env=cli_env, check=True,
                          capture_output=capture, text=True)
    return proc.stdout or ""


def _issue_token(s: Settings, env: dict, tenant: str, role: str) -> str:
    admin = (s.state / "runner-admin-token").read_text().strip()
    response = requests.post(f"{env['GPUCLOUD_API_URL']}/v1/tokens", timeout=30,
                             headers={"Authorization": f"Bearer {admin}"},
                             json={"role": role, "tenant": tenant, "description": "demo"})
    response.raise_for_status()
    return response.json()["token"]


def _journal(env: dict, node: str, job_id: str) -> tuple[int, str | None]:
    headers = {"Authorization": f"Bearer {env['NETBOX_TOKEN']}"}
    device = requests.get(f"{env['NETBOX_URL']}/api/dcim/devices/", params={"name": node}, headers=headers,
                          timeout=30).json()["results"][0]
    entries = requests.get(f"{env['NETBOX_URL']}/api/extras/journal-entries/", headers=headers, timeout=30,
                           params={"assigned_object_type": "dcim.device", "assigned_object_id": device["id"],
                                   "ordering": "-created", "limit": 10}).json()["results"]
    return device["id"], next((e["comments"] for e in entries if job_id in e["comments"]), None)


def run_job(s: Settings, env: dict, nodes: list[str]) -> None:
    print(f"== 4. tenant '{DEMO_TENANT}' launches a catalogued playbook with the gpucloud CLI, streamed live")
    config = s.state / "demo-cli.json"
    _cli(s, env, config, "login", "--url", env["GPUCLOUD_API_URL"], "--token",
         _issue_token(s, env, DEMO_TENANT, "tenant-operator"))
    _cli(s, env, config, "playbooks", "list")
    limit = [arg for node in nodes for arg in ("--limit", node)]
    print(f"$ gpucloud jobs run node_healthcheck {' '.join(limit)} -e node_healthcheck_min_gpus=8")
    _cli(s, env, config, "jobs", "run", "node_healthcheck", *limit, "-e", "node_healthcheck_min_gpus=8",
         "-e", "node_healthcheck_note=demo run")
    job = json.loads(_cli(s, env, config, "jobs", "list", "--limit", "1", "--json", capture=True))["items"][0]
    print(f"== 5. NetBox journal entries for job {job['id']} (operators see them on each device's page)")
    for node in nodes:
        device_id, entry = _journal(env, node, job["id"])
        print(f"  {node}: {entry or 'no journal entry (unexpected)'}")
        print(f"    {env['NETBOX_URL']}/dcim/devices/{device_id}/journal/")
    other = TENANTS[1][0]
    seen = requests.get(f"{env['GPUCLOUD_API_URL']}/v1/jobs/{job['id']}", timeout=30,
                        headers={"Authorization": f"Bearer {_issue_token(s, env, other, 'tenant-admin')}"})
    print(f"== 6. tenant '{other}' asks for that job: {seen.status_code} {seen.json()['detail']}")


def _playbook(s: Settings, env: dict, playbook: str, *args: str) -> str:
    exe = Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(exe), "-i", "inventory/fleet.gpucloud_netbox.yml", playbook, *args], cwd=s.repo,
                          env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{playbook} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def _drift(env: dict, fleet, count: int) -> list[str]:
    """Someone toggled turbo off in the BIOS setup of a few nodes: PATCH their BMCs directly."""
    auth = ("admin", env["GPUCLOUD_LAB_BMC_PASSWORD"])
    names = []
    for server in fleet.servers[:count]:
        base = f"https://{server.bmc_ip.split('/')[0]}"
        system = requests.get(f"{base}/redfish/v1/Systems", auth=auth, verify=env["GPUCLOUD_LAB_BMC_CA"],
                              timeout=30).json()["Members"][0]["@odata.id"]
        requests.patch(f"{base}{system}/BIOS/Settings", json={"Attributes": {"ProcTurboMode": "Disabled"}},
                       auth=auth, verify=env["GPUCLOUD_LAB_BMC_CA"], timeout=30).raise_for_status()
        names.append(server.name)
    return names


def tune_bios(s: Settings, env: dict, fleet) -> None:
    print("== 7. BIOS over Redfish: the fleet's emulated BMCs, addresses and credential references from NetBox")
    drifted = _drift(env, fleet, 4)
    print(f"  (turbo switched off by hand on {', '.join(drifted)})")
    audit = _playbook(s, env, "playbooks/bios_audit.yml")
    lines = audit.split("msg:", 1)[1].split("TASK", 1)[0] if "msg:" in audit else ""
    for line in lines.strip().splitlines():
        print("  audit: " + line.strip().lstrip("- ").strip("'"))
    t0 = time.monotonic()
    first = recap_summary(_playbook(s, env, "playbooks/bios_tune.yml"))
    t1 = time.monotonic()
    again = recap_summary(_playbook(s, env, "playbooks/bios_tune.yml"))
    print(f"  bios_tune.yml (profile gpu_performance): {first} in {t1 - t0:.1f}s; "
          f"again: {again} in {time.monotonic() - t1:.1f}s")
