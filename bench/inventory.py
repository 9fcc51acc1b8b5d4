"""bench/inventory: gpucloud_netbox against netbox.netbox.nb_inventory on the same NetBox.

Both read the same 2000-server demo fleet (4 interfaces each, IPs, cables) from the lab NetBox,
both producing hosts, groups, interfaces and IPs. Reported, as medians:
  - end to end: `ansible-inventory --list` wall time (process start-up included);
  - in process: the plugin's parse alone (bench/parse_time.py);
for our plugin cold (empty cache) and warm (cache valid, nothing changed in NetBox), and for
nb_inventory with interfaces and without. The last line is one JSON object.

nb_inventory comes from the `ansible` PyPI package, installed for the benchmark only into its
own virtualenv in the lab cache.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.proc import run  # noqa: E402
from lab.seed import ensure_fleet  # noqa: E402
from lab.settings import load  # noqa: E402
from lab.stack import up  # noqa: E402

BASELINE_PACKAGES = ["ansible==14.5.0", "pytz==2026.6"]
OURS = """plugin: gpucloud_netbox
device_roles: [gpu-server]
cache: {cache}
cache_plugin: ansible.builtin.jsonfile
cache_connection: {cache_dir}
"""
BASELINE = """plugin: netbox.netbox.nb_inventory
api_endpoint: {url}
token:
  type: Bearer
  value: "{{{{ lookup('ansible.builtin.env', 'NETBOX_TOKEN') }}}}"
validate_certs: false
config_context: false
interfaces: {interfaces}
group_by: [tenants, device_roles, sites, racks, platforms, location]
query_filters:
  - role: gpu-server
"""


def baseline_venv(s) -> Path:
    venv = s.cache / "venvs" / "bench-nb-inventory"
    marker = venv / ".complete"
    if not marker.exists():
        print(f"installing the baseline ({' '.join(BASELINE_PACKAGES)}) into {venv}", flush=True)
        run([sys.executable, "-m", "venv", "--clear", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *BASELINE_PACKAGES])
        marker.touch()
    return venv


def end_to_end(bin_dir: Path, source: Path, env: dict, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(bin_dir / "ansible-inventory"), "-i", str(source), "--list"], cwd=REPO, env=env,
                       stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def in_process(python: Path, source: Path, env: dict, runs: int) -> dict:
    out = subprocess.run([str(python), str(REPO / "bench" / "parse_time.py"), str(source), str(runs)], cwd=REPO,
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=None,
                        help="runs of nb_inventory (default: --runs; each takes minutes with interfaces)")
    args = parser.parse_args()
    s = load()
    lab_env = up(s)
    print(ensure_fleet(s, lab_env, args.nodes), flush=True)
    env = {**os.environ, **lab_env, "GPUCLOUD_TENANT": ""}
    ours_bin, base_venv = Path(sys.executable).parent, baseline_venv(s)
    work = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    cache_dir = work / "cache"
    sources = {}
    for name, text in {
        "ours_cold": OURS.format(cache="false", cache_dir=cache_dir),
        "ours_warm": OURS.format(cache="true", cache_dir=cache_dir),
        "baseline_interfaces": BASELINE.format(url=lab_env["NETBOX_URL"], interfaces="true"),
        "baseline_basic": BASELINE.format(url=lab_env["NETBOX_URL"], interfaces="false"),
    }.items():
        path = work / name / ("fleet.gpucloud_netbox.yml" if name.startswith("ours") else "fleet.netbox.yml")
        path.parent.mkdir()
        path.write_text(text)
        sources[name] = path
    end_to_end(ours_bin, sources["ours_warm"], env, 1)  # fill the cache the warm runs answer from
    results = {}
    for name, path in sources.items():
        ours = name.startswith("ours")
        bin_dir = ours_bin if ours else base_venv / "bin"
        run_env = env if ours else {**env, "ANSIBLE_INVENTORY_ENABLED": "netbox.netbox.nb_inventory"}
        print(f"running {name} ...", flush=True)
        # The in-process figure needs the plugin's own process; one parse of the slow baseline is
        # enough there, its medians come from the end-to-end runs.
        inner = in_process(bin_dir / "python", path, run_env, args.runs if ours else 1)
        outer = end_to_end(bin_dir, path, run_env, args.runs if ours else (args.baseline_runs or args.runs))
        results[name] = {"end_to_end_s": round(statistics.median(outer), 3),
                         "in_process_s": round(statistics.median(inner["times"]), 3),
                         "hosts": inner["hosts"], "groups": inner["groups"],
                         "interfaces": inner["interfaces"], "ips": inner["ips"]}
        if inner["data_path"]:
            results[name]["data_path_s"] = round(statistics.median(inner["data_path"]), 3)
        print(f"  {name:22} end-to-end median {results[name]['end_to_end_s']:7.2f}s   in process "
              f"{results[name]['in_process_s']:7.2f}s   hosts={inner['hosts']} groups={inner['groups']} "
              f"interfaces={inner['interfaces']} ips={inner['ips']}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    base, cold, warm = results["baseline_interfaces"], results["ours_cold"], results["ours_warm"]
    summary = {
        "benchmark": "inventory", "nodes": args.nodes, "runs": args.runs,
        "baseline_runs": args.baseline_runs or args.runs, "results": results,
        "speedup_cold_vs_nb_inventory_interfaces_end_to_end": round(base["end_to_end_s"] / cold["end_to_end_s"], 1),
        "speedup_cold_vs_nb_inventory_interfaces_in_process": round(base["in_process_s"] / cold["in_process_s"], 1),
        "warm_in_process_s": warm["in_process_s"],
        "warm_data_path_s": warm.get("data_path_s"),
        "bar": {"speedup_min": 15, "warm_max_s": 0.5},
    }
    print(f"gpucloud_netbox cold is {summary['speedup_cold_vs_nb_inventory_interfaces_end_to_end']}x faster than "
          f"nb_inventory with interfaces end to end ({summary['speedup_cold_vs_nb_inventory_interfaces_in_process']}x "
          f"in process); warm run: {warm.get('data_path_s')}s change check + cache read, {warm['in_process_s']}s "
          f"in process with Ansible adding {warm['hosts']} hosts, {warm['end_to_end_s']}s end to end")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
