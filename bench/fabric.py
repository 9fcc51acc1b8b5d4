"""bench/fabric: allocate, render and apply N tenants (default 100) on two leaves, then the same again with nothing
changed, then one tenant more.

  allocate  gpucloud.infra.tenant_network's code against the lab NetBox: a VRF (RD, route targets, L3VNI), one
            VLAN/L2VNI with a /24 and an IB P_Key per tenant, --workers allocations at once (they race for the
            same pools, as concurrent onboardings would);
  render    gpucloud.infra.fabric_config's code: build, schema-validate and render every switch;
  apply     ansible-playbook running the fabric_tenant role on the fabric lab's switches (Linux namespaces with
            FRR and ifupdown2, over the nsenter connection), then the wait until every L2VNI has its remote VTEP.
The fabric is the two-leaf, two-spine underlay of tests/fixtures/fabric/lab-inputs.yml; every tenant gets one
server port on each leaf (swpN, skipping the uplinks), so each leaf carries all N tenants. The tenants are
bench-fabric-NNN, created in NetBox if missing and released (networks back to the pools) at the end.

The lab cables one spare port per leaf at the start, so the one-more-tenant run finds the N tenants in place and
adds only the new one. The baseline is the cold run itself (empty allocations, bare switches): the no-change
re-run and the one-more-tenant run are printed as ratios to it, all measured in this one invocation. Needs root
(namespaces) and the lab (started if down). The last line is one JSON object.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "collections")]

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config, netbox_api, tenant_network  # noqa: E402
from lab.fabric_lab import FabricLab, attachment_servers, lab_root, probe  # noqa: E402
from lab.proc import changed_per_host  # noqa: E402
from lab.seed import ensure_fleet  # noqa: E402
from lab.settings import load  # noqa: E402
from lab.stack import up  # noqa: E402

UNDERLAY = REPO / "tests" / "fixtures" / "fabric" / "lab-inputs.yml"
POOL = "tenant-fabric"
CONVERGE_TIMEOUT = 300


def tenant_slugs(count: int) -> list[str]:
    return [f"bench-fabric-{i:03d}" for i in range(1, count + 1)]


def ensure_tenants(nb, slugs: list[str]) -> None:
    have = {t["slug"] for t in nb.list("tenancy/tenants", slug__isw="bench-fabric-", fields="id,slug")}
    missing = [{"name": slug, "slug": slug, "description": "bench/fabric"} for slug in slugs if slug not in have]
    if missing:
        nb.create("tenancy/tenants", missing)


def allocate(nb, slugs: list[str], workers: int, state: str = "present") -> tuple[float, list[dict]]:
    def one(slug):
        if state == "absent":
            return tenant_network.absent(nb, slug, POOL)
        return tenant_network.present(nb, slug, POOL, 1)
    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, slugs))
    return time.monotonic() - t0, results


def fabric_inputs(results: list[dict], backend: str) -> dict:
    """The bench underlay with each tenant on one port of each leaf."""
    inputs = yaml.safe_load(UNDERLAY.read_text())
    inputs["fabric"]["vrf_backend"] = backend
    inputs["tenants"] = [r["allocation"] for r in results]
    leaves = [n for n in inputs["fabric"]["switches"] if n.startswith("leaf")]
    uplinks = {u["interface"] for n in leaves for u in inputs["fabric"]["switches"][n]["uplinks"]}
    ports = [p for p in (f"swp{n}" for n in range(1, 4 * len(results) + 8)) if p not in uplinks]
    inputs["attachments"] = [{"switch": leaf, "interface": ports[i], "tenant": alloc["tenant"],
                              "vlan": alloc["vlans"][0]["name"]}
                             for i, alloc in enumerate(inputs["tenants"]) for leaf in leaves]
    return inputs


def render(inputs: dict) -> tuple[float, dict]:
    t0 = time.monotonic()
    switches = fabric_config.switch_files(inputs)
    return time.monotonic() - t0, switches


def apply(lab: FabricLab, switches: dict) -> tuple[float, dict]:
    t0 = time.monotonic()
    proc = lab.apply(switches)
    took = time.monotonic() - t0
    if proc.returncode:
        raise SystemExit(f"apply failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return took, changed_per_host(proc.stdout)


def spare_servers(inputs: dict, count: int) -> list[dict]:
    """Servers on the ports the next `count` tenants will get, cabled now and addressed by nobody yet, so adding a
    tenant later needs no lab rebuild."""
    leaves = sorted({a["switch"] for a in inputs["attachments"]})
    grown = fabric_inputs([{"allocation": t} for t in inputs["tenants"]] + [
        {"allocation": {"tenant": f"spare-{i}", "vlans": [{"name": "net1"}]}} for i in range(count)],
        inputs["fabric"]["vrf_backend"])
    return [{"name": f"spare-{a['switch']}-{a['interface']}", "switch": a["switch"], "interface": a["interface"],
             "tenant": a["tenant"]} for a in grown["attachments"] if a["tenant"].startswith("spare-")
            and a["switch"] in leaves]


def run_phase(name: str, nb, slugs: list[str], workers: int, lab: FabricLab, backend: str,
              bring_up: bool = False) -> dict:
    alloc_s, results = allocate(nb, slugs, workers)
    inputs = fabric_inputs(results, backend)
    render_s, switches = render(inputs)
    lab_s = None
    if bring_up:
        t0 = time.monotonic()
        roles = {n: "spine" if n.startswith("spine") else "leaf" for n in inputs["fabric"]["switches"]}
        lab.up(inputs, servers=attachment_servers(inputs) + spare_servers(inputs, 1), roles=roles, backend=backend)
        lab_s = time.monotonic() - t0
    apply_s, recap = apply(lab, switches)
    converge_s = lab.wait_converged(switches, timeout=CONVERGE_TIMEOUT)
    phase = {"phase": name, "tenants": len(slugs), "allocate_s": round(alloc_s, 2), "render_s": round(render_s, 3),
             "apply_s": round(apply_s, 2), "converge_s": round(converge_s, 2),
             "total_s": round(alloc_s + render_s + apply_s + converge_s, 2),
             "allocations_changed": sum(r["changed"] for r in results), "switches_changed": sum(
                 1 for c in recap.values() if c), "tasks_changed": sum(recap.values()),
             "lines": {n: sum(t.count("\n") for t in e["files"].values()) for n, e in switches.items()}}
    if lab_s is not None:
        phase["lab_up_s"] = round(lab_s, 2)
    return phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4, help="concurrent allocations")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/fabric needs root (network namespaces)")
    s = load()
    env = up(s)
    ensure_fleet(s, env, 32)
    nb = netbox_api.NetBox(env["NETBOX_URL"], env["NETBOX_TOKEN"])
    slugs = tenant_slugs(args.tenants + 1)
    ensure_tenants(nb, slugs)
    allocate(nb, slugs, args.workers, state="absent")  # a cold start, whatever an earlier run left
    backend = probe()
    lab = FabricLab(lab_root(s).parent / "fabric-bench")
    lab.down()
    phases = []
    try:
        phases.append(run_phase("cold", nb, slugs[:-1], args.workers, lab, backend, bring_up=True))
        phases.append(run_phase("no-change", nb, slugs[:-1], args.workers, lab, backend))
        phases.append(run_phase("one-more-tenant", nb, slugs, args.workers, lab, backend))
    finally:
        lab.down()
        release_s, _ = allocate(nb, slugs, args.workers, state="absent")
    print(f"{'phase':<16} {'tenants':>7} {'allocate':>9} {'render':>8} {'apply':>8} {'converge':>9} {'total':>8} "
          f"{'changed':>8}")
    for p in phases:
        print(f"{p['phase']:<16} {p['tenants']:>7} {p['allocate_s']:>8.2f}s {p['render_s']:>7.3f}s "
              f"{p['apply_s']:>7.2f}s {p['converge_s']:>8.2f}s {p['total_s']:>7.2f}s {p['tasks_changed']:>8}")
    cold = phases[0]
    for p in phases[1:]:
        print(f"{p['phase']}: {p['total_s'] / cold['total_s']:.2f}x the baseline (cold run, {cold['total_s']:.1f}s), "
              f"{p['tasks_changed']} changed tasks, {p['allocations_changed']} allocations changed")
    print(f"release of {len(slugs)} tenants: {release_s:.1f}s; lab up (not counted): {cold.get('lab_up_s')}s")
    print(json.dumps({"benchmark": "fabric", "tenants": args.tenants, "workers": args.workers, "vrf_backend": backend,
                      "baseline": "cold", "phases": phases, "release_s": round(release_s, 2),
                      "rerun_ratio": round(phases[1]["total_s"] / cold["total_s"], 3),
                      "one_more_ratio": round(phases[2]["total_s"] / cold["total_s"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
