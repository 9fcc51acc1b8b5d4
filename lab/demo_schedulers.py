"""The demo's scheduler views: the Slurm a cluster's scheduler stage deployed (step 10), and step 11,
Kubernetes rendered for a tenant's GB200 trays from NetBox (validated offline: no control plane runs here).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lab import node_host
from lab.proc import recap_summary
from lab.settings import Settings
from runner_api.stages import scheduler_name

K8S_TENANT = "acme"
K8S_ROW = "dc1-row02"  # acme's GB200 trays: one NVL72 domain


def _show(text: str, indent: str = "    ") -> None:
    for line in text.strip().splitlines():
        print(indent + line)


def show_slurm(s: Settings, tenant: str, cluster: str, gpus: int) -> None:
    """What the tenant's users get on the cluster's controller: GPUs per node, topology, a job across nodes."""
    env = {**os.environ, "SLURM_CONF": str(node_host.slurm_root(s) / scheduler_name(tenant, cluster)
                                           / "etc/slurm/slurm.conf")}

    def slurm(*cmd: str) -> str:
        proc = subprocess.run(list(cmd), env=env, capture_output=True, text=True)
        return proc.stdout + proc.stderr

    print("  $ sinfo -N -o '%N %G %P %T'     (on the cluster's controller: Slurm from NetBox, its scheduler stage)")
    _show(slurm("sinfo", "-N", "-o", "%N %G %P %T"))
    print("  $ scontrol show topology")
    _show(slurm("scontrol", "show", "topology"))
    step = "echo $SLURMD_NODENAME ROCR_VISIBLE_DEVICES=$ROCR_VISIBLE_DEVICES"
    print(f"  $ srun -N2 --ntasks-per-node=1 --gres=gpu:{gpus // 2} bash -c '{step}'")
    _show(slurm("srun", "-N2", "--ntasks-per-node=1", f"--gres=gpu:{gpus // 2}", "bash", "-c", step))


def _inventory(s: Settings) -> Path:
    path = s.state / "demo-k8s.gpucloud_netbox.yml"
    path.write_text(yaml.safe_dump({"plugin": "gpucloud_netbox", "tenant": K8S_TENANT, "cache": False,
                                    "compose": node_host.server_compose(s)}))
    return path


def kubernetes(s: Settings, env: dict) -> None:
    name = f"{K8S_TENANT}-infer"
    print(f"== 11. Kubernetes for {K8S_TENANT}'s GB200 trays ({K8S_ROW}), rendered from NetBox and validated "
          "offline (no control plane runs here)")
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/k8s_cluster.yml", "-i",
           str(_inventory(s)), "-l", f"location_{K8S_ROW.replace('-', '_')}", "-e", f"k8s_cluster_name={name}",
           "-e", f"k8s_cluster_tenant={K8S_TENANT}"]
    for label in ("render", "again"):
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=s.repo, env={**os.environ, **env}, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"k8s_cluster.yml failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        print(f"  $ ansible-playbook playbooks/k8s_cluster.yml -l location_{K8S_ROW.replace('-', '_')}   ({label}: "
              f"{recap_summary(proc.stdout)} in {time.monotonic() - t0:.1f}s)")
    root = node_host.k8s_root(s) / name
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "pki" not in p.parts
                   and not p.name.startswith("."))
    print(f"  {len(files)} files in {root}: " + ", ".join(f for f in files if not f.startswith("nodes/")))
    labels = next(d for d in yaml.safe_load_all((root / "cluster/manifests/node-labels.yaml").read_text()) if d)
    print(f"  node labels of {labels['metadata']['name']} (from NetBox):")
    _show("\n".join(f"{k}={v}" for k, v in labels["metadata"]["labels"].items()))
    kueue = [d for d in yaml.safe_load_all((root / "cluster/manifests/kueue.yaml").read_text()) if d]
    print("  Kueue topology levels: " + " > ".join(lv["nodeLabel"] for lv in kueue[0]["spec"]["levels"]))
    releases = yaml.safe_load((root / "cluster/helm/releases.yaml").read_text().split("---", 1)[1])["releases"]
    print("  Helm releases: " + ", ".join(f"{r['name']} {r['version']}" for r in releases))
