"""Demo step 10: a tenant as a product, all through the `gpucloud` CLI.

The platform admin onboards a new tenant (NetBox tenant with quotas, token realm, first admin, networks,
a project with its own quota, an invited user); its admin accepts the invitation, asks for 16 GPUs in
one NVLink domain (refused, and told why), prices 16 AMD GPUs on one leaf, creates that cluster and
watches its stages (network on the fabric lab's switches, BIOS over Redfish, image skipped as none was
asked for, Slurm from NetBox, node check) and runs a job on it; quota and cost show the result, a second
request runs into the quota with an alert, and offboarding takes Slurm down, wipes the nodes and returns
everything to the pools.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lab.demo_schedulers import show_slurm
from lab.settings import Settings

TENANT = "umbrella"
REQUEST = {
    "slug": TENANT, "name": "Umbrella Biotech", "description": "gpucloud demo tenant (step 10)",
    "quota": {"gpus": 20, "cpus": 2048, "memory_gb": 16384, "storage_tb": 200, "alert_thresholds": [80, 100]},
    "identity": {"realm": "token", "default_role": "tenant-viewer"},
    "admin": {"email": "admin@umbrella.example"},
    "networks": {"site": "dc1", "vlans": 1, "prefix_length": 24},
    "projects": {"vision": {"description": "imaging models", "quota": {"gpus": 16}}},
    "users": [{"email": "alice@umbrella.example", "role": "tenant-operator", "projects": ["vision"]}],
}


def _cli(s: Settings, env: dict, config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cli_env = {**os.environ, **env, "GPUCLOUD_CONFIG": str(config)}
    cli_env.pop("GPUCLOUD_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "runner_api.cli", *args], cwd=s.repo, env=cli_env,
                          capture_output=True, text=True)
    if check and proc.returncode:
        raise SystemExit(f"gpucloud {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _show(proc: subprocess.CompletedProcess, indent: str = "    ") -> None:
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        print(indent + line)


def tenant_product(s: Settings, env: dict) -> None:
    print(f"== 10. a tenant as a product: onboard '{TENANT}', a topology-constrained cluster with its cost, "
          "the quota and its alert, offboarding")
    admin_config, tenant_config = s.state / "demo-platform-cli.json", s.state / "demo-umbrella-cli.json"
    request_file = s.state / "demo-umbrella-onboarding.yml"
    request_file.write_text(yaml.safe_dump(REQUEST, sort_keys=False))
    platform_token = (s.state / "runner-admin-token").read_text().strip()
    _cli(s, env, admin_config, "login", "--url", env["GPUCLOUD_API_URL"], "--token", platform_token)
    _offboard_leftover(s, env, admin_config)
    t0 = time.monotonic()
    print(f"  $ gpucloud onboard -f {request_file.name}")
    onboarded = _cli(s, env, admin_config, "onboard", "-f", str(request_file), "--json")
    flow = json.loads(onboarded.stdout)
    for step in flow["steps"]:
        detail = step.get("detail")
        print(f"    {step['name']:<9} {step['status']:<8} {json.dumps(detail) if detail else ''}")
    print(f"    onboarded in {time.monotonic() - t0:.1f}s")
    code = next(i["code"] for i in flow["invitations"] if i["email"] == REQUEST["admin"]["email"])
    print("  $ gpucloud accept <code>     (the tenant admin redeems the one-time invitation)")
    _show(_cli(s, env, tenant_config, "accept", code, "--url", env["GPUCLOUD_API_URL"]))
    print("  $ gpucloud clusters create train --kind slurm --gpus 16 --model H200-SXM-141GB --interconnect nvlink "
          "--dry-run")
    _show(_cli(s, env, tenant_config, "clusters", "create", "train", "--kind", "slurm", "--gpus", "16", "--model",
               "H200-SXM-141GB", "--interconnect", "nvlink", "--dry-run", check=False))
    wanted = ["--kind", "slurm", "--gpus", "16", "--vendor", "AMD", "--interconnect", "leaf", "--project", "vision"]
    print(f"  $ gpucloud clusters create train {' '.join(wanted)} --dry-run")
    _show(_cli(s, env, tenant_config, "clusters", "create", "train", *wanted, "--dry-run"))
    print(f"  $ gpucloud clusters create train {' '.join(wanted)} --wait")
    t0 = time.monotonic()
    _show(_cli(s, env, tenant_config, "clusters", "create", "train", *wanted, "--wait"))
    print(f"    provisioned in {time.monotonic() - t0:.1f}s")
    show_slurm(s, TENANT, "train", 16)
    print("  $ gpucloud quota")
    _show(_cli(s, env, tenant_config, "quota"))
    print("  $ gpucloud cost")
    _show(_cli(s, env, tenant_config, "cost"))
    print("  $ gpucloud clusters create more --kind k8s --gpus 8 --vendor AMD")
    _show(_cli(s, env, tenant_config, "clusters", "create", "more", "--kind", "k8s", "--gpus", "8", "--vendor",
               "AMD", check=False))
    print("  $ gpucloud alerts")
    _show(_cli(s, env, tenant_config, "alerts"))
    print(f"  $ gpucloud offboard {TENANT} --wait")
    t0 = time.monotonic()
    _show(_cli(s, env, admin_config, "offboard", TENANT, "--wait"))
    print(f"    offboarded in {time.monotonic() - t0:.1f}s")


def _offboard_leftover(s: Settings, env: dict, config: Path) -> None:
    """A demo run cut short leaves the tenant onboarded; start from scratch."""
    status = _cli(s, env, config, "onboarding", TENANT, "--json", check=False)
    if status.returncode == 0 and json.loads(status.stdout).get("status") not in (None, "offboarded"):
        _cli(s, env, config, "offboard", TENANT, "--wait", check=False)
