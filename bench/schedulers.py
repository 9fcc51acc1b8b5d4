"""bench/schedulers: planning a cluster's scheduler config from NetBox (gpucloud) against facts gathered on every
node (the baseline: DeepOps and the common Slurm roles build slurm.conf from ansible_processor_vcpus and
ansible_memtotal_mb, so every run reaches every node before anything is decided, and one unreachable node fails
the whole config - "on even 10 hosts, these files can be a frequent source of Ansible failures").

Measured side by side in one run:
1. the lab fleet's servers (emulated here, local connection), with every node up and then with one unreachable
   (its connection refused): the baseline gathers hardware facts on each and writes a NodeName line per host
   (bench/slurm_facts_baseline.yml); ours runs the slurm_cluster role's planning - figures from the inventory's
   NetBox facts, spines from NetBox, slurm.conf, gres.conf, topology.conf and cgroup.conf computed and validated on
   the controller (bench/slurm_plan.yml). Reported: the best time of --repeat runs and how many of the nodes the
   slurm.conf it wrote holds. Over a local connection a node's facts cost far less than over SSH to a real server.
2. the builders alone at fleet scale (no I/O, synthetic nodes: HGX servers 32 per leaf and GB200 NVL72 racks of 18
   trays, two spines per site): slurm_config and k8s_config, build + render + offline validation.
The last line is one JSON object.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import lab  # noqa: E402,F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import (  # noqa: E402
    k8s_config,
    k8s_render,
    slurm_config,
    slurm_render,
)
from lab import node_host  # noqa: E402
from lab.settings import load  # noqa: E402
from lab.stack import up  # noqa: E402


def _playbook(playbook: str, inventory: Path, env: dict, out: Path, *extra: str) -> tuple[float, int]:
    """(seconds, NodeName lines in the slurm.conf it wrote; 0 when it wrote none)."""
    out.unlink(missing_ok=True)
    start = time.monotonic()
    # Ansible's default memory fact cache, not the lab's on-disk one: stale facts would hide a node that is down.
    subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), playbook, "-i", str(inventory),
                    "-e", f"bench_out={out}", *extra], cwd=REPO, capture_output=True, text=True,
                   env={**os.environ, **env, "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory"})
    seconds = time.monotonic() - start
    lines = out.read_text().splitlines() if out.exists() else []
    return seconds, sum(line.startswith("NodeName=") for line in lines)


def _inventory(work: Path, s, unreachable: str | None) -> Path:
    compose = {k: v for k, v in node_host.server_compose(s).items() if k.startswith("ansible_")}
    if unreachable:  # its connection refused, as a node that is down or off the network
        compose["ansible_connection"] = f"'ssh' if inventory_hostname == {unreachable!r} else 'local'"
        compose["ansible_port"] = "9"
        compose["ansible_host"] = f"'127.0.0.1' if inventory_hostname == {unreachable!r} else mgmt_ip"
    path = work / f"fleet-{'down' if unreachable else 'up'}.gpucloud_netbox.yml"
    path.write_text(yaml.safe_dump({"plugin": "gpucloud_netbox", "cache": False, "compose": compose}))
    return path


def fleet_runs(repeat: int, limit: int = 0) -> dict:
    """Both approaches over the seeded fleet's servers (the first `limit` of them when limit > 0)."""
    s = load()
    env = up(s)
    work = Path(tempfile.mkdtemp(prefix="bench-schedulers-"))
    listing = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i",
                              str(_inventory(work, s, None)), "--list"], cwd=REPO, env={**os.environ, **env},
                             capture_output=True, text=True, check=True).stdout
    names = sorted(json.loads(listing)["_meta"]["hostvars"])[:limit or None]
    if not names:
        raise SystemExit("bench/schedulers: NetBox holds no servers; seed a fleet first (make seed)")
    hosts = ("--limit", ",".join(names)) if limit else ()
    out, rows = work / "slurm.conf", {}
    for label, unreachable in (("all up", None), ("one down", names[len(names) // 2])):
        inventory = _inventory(work, s, unreachable)
        for approach, playbook, extra in (("baseline", "bench/slurm_facts_baseline.yml", ()),
                                          ("ours", "bench/slurm_plan.yml", ("-e", "slurm_cluster_name=bench"))):
            runs = [_playbook(playbook, inventory, env, out, *hosts, *extra) for _ in range(repeat)]
            rows[f"{approach}, {label}"] = {"seconds": round(min(r[0] for r in runs), 2),
                                            "nodes_in_config": min(r[1] for r in runs)}
    return {"nodes": len(names), "runs": rows}


def synthetic(n: int) -> tuple[list[dict], dict]:
    nodes, spines = [], {}
    for i in range(n):
        nvl = i % 2 == 1  # every other node a GB200 tray
        if nvl:
            rack, leaf = f"nvl-r{i // 36:03d}", f"leaf-nvl{i // 72:03d}"
            gpu, domain = {"vendor": "NVIDIA", "model": "GB200", "count": 4}, rack
        else:
            leaf = f"leaf-hgx{i // 64:03d}"
            gpu, domain = {"vendor": "NVIDIA", "model": "H100-SXM5-80GB", "count": 8}, f"nvl8-n{i:05d}"
        site = f"dc{1 + (i * 2) // n}"
        spines[leaf] = [f"spine-{site}-1", f"spine-{site}-2"]
        nodes.append({"name": f"gpu-n{i:05d}", "address": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",
                      "cpus": 112, "memory_gb": 2048, "gpu": gpu, "project": f"p{i % 7}", "site": site,
                      "location": f"row{i // 64:03d}", "rack": f"r{i // 16:04d}", "leaf": leaf,
                      "nvlink_domain": domain})
    return nodes, {"spines": spines}


SLURM_CLUSTER = {
    "name": "bench", "version": "22.05.8",
    "controllers": [{"name": "gpu-n00000", "hostname": "ctl", "address": "10.0.0.1"}],
    "slurmctld_port": 6817, "slurmd_port": 6818,
    "paths": {"conf_dir": "/etc/slurm", "state_save": "/var/spool/slurmctld", "slurmd_spool": "/var/spool/slurmd",
              "log_dir": "/var/log/slurm", "run_dir": "/run/slurm", "munge_socket": "/run/munge/munge.socket.2"},
    "slurm_user": "slurm", "configless": True, "topology": "auto", "proctrack": "proctrack/cgroup",
    "task_plugin": "task/cgroup,task/affinity", "config_overrides": False, "partition_access": "none",
    "default_partition": "batch", "memory_fraction": 0.95,
}


def builders(n: int) -> dict:
    nodes, topology = synthetic(n)
    start = time.monotonic()
    config = slurm_config.build({"cluster": SLURM_CLUSTER, "nodes": nodes, "topology": topology})
    files = slurm_render.render(config)
    assert slurm_render.check(files, SLURM_CLUSTER["version"]) == []
    slurm_s = time.monotonic() - start
    cluster = {"name": "bench", "kubernetes_version": "v1.33.4", "control_planes": ["gpu-n00000"], "api_port": 6443,
               "pod_subnet": "10.128.0.0/9", "service_subnet": "10.96.0.0/12", "dns_domain": "cluster.local",
               "cni": "calico", "containerd_config_version": 2, "nvidia_stack": "host", "gpu_taint": True,
               "control_plane_schedulable": True, "topology_manager_policy": "best-effort",
               "label_prefix": "gpucloud.io", "default_namespace": "default",
               "ca_cert_pem": k8s_config.self_signed_ca(), "bootstrap_token": "abcdef.0123456789abcdef",
               "certificate_key": "c" * 64,
               "versions": yaml.safe_load((REPO / "roles/k8s_cluster/defaults/main.yml").read_text())[
                   "k8s_cluster_versions"]}
    start = time.monotonic()
    k8s = k8s_config.build({"cluster": cluster, "nodes": nodes, "topology": topology})
    k8s_files = k8s_render.render(k8s, "bench")
    assert k8s_render.check(k8s_files, "v1.33.4") == []
    k8s_s = time.monotonic() - start
    return {"nodes": n, "slurm_s": round(slurm_s, 2), "slurm_conf_lines": files["slurm.conf"].count("\n"),
            "topology_lines": files["topology.conf"].count("\n"), "k8s_s": round(k8s_s, 2),
            "k8s_files": len(k8s_files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each playbook (best taken)")
    parser.add_argument("--sizes", default="1000,4000", help="fleet sizes for the builders alone")
    parser.add_argument("--nodes", type=int, default=0, help="the first N of the lab's servers only (default: all)")
    args = parser.parse_args()
    fleet = fleet_runs(args.repeat, args.nodes)
    print(f"1. planning Slurm for {fleet['nodes']} of the lab's servers (best of {args.repeat}):")
    for label, row in fleet["runs"].items():
        print(f"   {label:22} {row['seconds']:6.2f} s, slurm.conf holds {row['nodes_in_config']:3d} of "
              f"{fleet['nodes']} nodes")
    scale = [builders(int(n)) for n in args.sizes.split(",")]
    print("2. the builders alone (build + render + offline validation):")
    for row in scale:
        print(f"   {row['nodes']:5d} nodes: Slurm {row['slurm_s']:5.2f} s ({row['slurm_conf_lines']} slurm.conf lines, "
              f"{row['topology_lines']} topology.conf lines); Kubernetes {row['k8s_s']:5.2f} s "
              f"({row['k8s_files']} files)")
    print(json.dumps({"benchmark": "schedulers", "baseline": "facts gathered on every node", "fleet": fleet,
                      "builders": scale}))


if __name__ == "__main__":
    main()
