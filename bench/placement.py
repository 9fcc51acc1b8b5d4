"""bench/placement: topology-aware placement (runner_api.placement) against first-fit on one trace.

The fleet (default 4000 nodes): HGX H100 and H200 servers (8 GPUs, one NVLink domain each), GB200 NVL72 racks
(18 trays of 4 GPUs sharing one NVLink domain) and a few MI300X servers (AMD). A leaf serves one row of one model:
32 HGX servers, or two NVL72 racks (36 trays: a rack never straddles leaves); a pod is 8 rows of one model; two
sites. Every fifth HGX row is Ethernet-only (no InfiniBand).

The trace (seeded): --requests requests from single boards to whole NVL72 racks and multi-leaf jobs, with a mix of
interconnect constraints, models, InfiniBand and vendor-only or memory-only requests. Each hardware class (HGX,
GB200, AMD) has its own Poisson arrivals, calibrated so it is offered --load of its GPUs (durations: exponential,
mean 1); the streams are merged by time. A refused request is dropped, a placed one holds its nodes until it ends.

Both policies replay the same trace:
  ours        FreePool: the tightest level first, best fit by domain, whole sub-domains inside;
  first-fit   the baseline: at the request's constraint level, the first domain in name order with enough free
              nodes, and the first free nodes by name inside it (the same indexes and messages).
Reported per policy: place() time p50/p99, placed and refused, the share of feasible multi-node requests placed
in their tightest domain (tightest_feasible() at decision time) and fragmentation: after every event (after the
first --warmup of the arrivals), the largest free NVL72 domain in GPUs, the largest free leaf in nodes (of one
model) and whether a 72-GPU NVL72 request would fit. The last line is one JSON object.
"""

import argparse
import gc
import heapq
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runner_api.placement import FreePool, Level, Node, Placement, Request, Unplaceable  # noqa: E402

BAR_P99_MS = 50
BAR_TIGHTEST = 0.99
HGX = {"H100-SXM5-80GB": (80, 24.0), "H200-SXM-141GB": (141, 30.0)}  # GPU memory (GB), hourly cost
GB200 = "GB200"
MI300X = "MI300X"
GPUS = {"H100-SXM5-80GB": 8, "H200-SXM-141GB": 8, GB200: 4, MI300X: 8}
LEAF_PORTS = 32
RACK_TRAYS = 18
LEAVES_PER_POD = 8
SITES = 2


# -- the fleet -------------------------------------------------------------------------------------------
def fleet(nodes: int) -> list[Node]:
    """40% H100, 26% H200, 32% GB200 (whole racks), the rest MI300X. A row (leaf) holds one model and a pod is
    eight rows of one model, as fleets are built out a generation at a time; pods of each model are dealt to the
    sites in turn."""
    racks = max(1, round(nodes * 0.32 / RACK_TRAYS))
    counts = {"H100-SXM5-80GB": round(nodes * 0.40), "H200-SXM-141GB": round(nodes * 0.26), GB200: racks * RACK_TRAYS}
    counts[MI300X] = max(0, nodes - sum(counts.values()))
    per_model = []  # each model's pods, a pod being a list of rows: (model, servers in the row)
    for model, count in counts.items():
        size = 2 * RACK_TRAYS if model == GB200 else LEAF_PORTS
        rows = [(model, min(size, count - start)) for start in range(0, count, size)]
        per_model.append([rows[i:i + LEAVES_PER_POD] for i in range(0, len(rows), LEAVES_PER_POD)])
    pods = [pod for turn in zip_longest(*per_model) for pod in turn if pod]  # one pod of each model in turn
    out, rows_in = [], [0] * SITES
    for number, pod_rows in enumerate(pods):
        site_no = number % SITES
        site, pod = f"dc{site_no + 1}", f"pod-dc{site_no + 1}-{number // SITES + 1:02d}"
        for model, count in pod_rows:
            row = rows_in[site_no] = rows_in[site_no] + 1
            leaf = f"leaf-{site}-{row:03d}"
            ib = model == GB200 or row % 5 != 0  # every fifth HGX row is Ethernet-only
            for slot in range(count):
                name = f"gpu-{site}-{row:03d}-{slot + 1:02d}"
                if model == GB200:
                    nvlink = f"nvl72-{site}-{row:03d}-k{slot // RACK_TRAYS + 1}"
                    out.append(Node(name, GB200, "NVIDIA", 4, 186, nvlink, leaf, pod, site, True, 144, 960, 15.36,
                                    40.0))
                elif model == MI300X:
                    out.append(Node(name, MI300X, "AMD", 8, 192, f"nvl8-{name}", leaf, pod, site, ib, 192, 2304,
                                    30.72, 26.0))
                else:
                    memory, cost = HGX[model]
                    out.append(Node(name, model, "NVIDIA", 8, memory, f"nvl8-{name}", leaf, pod, site, ib, 112, 2048,
                                    30.72, cost))
    return out


# -- the trace -------------------------------------------------------------------------------------------
def hgx_request(rng: random.Random) -> Request:
    kind = rng.random()
    model = rng.choice(list(HGX))
    if kind < 0.40:  # one board, or part of one
        who = rng.random()
        filters = ({"model": model} if who < 0.75 else {"vendor": "NVIDIA"} if who < 0.85 else
                   {"min_gpu_memory_gb": 140})
        return Request(gpus=rng.choice((1, 2, 4, 8, 8, 8)), interconnect=rng.choice((Level.NVLINK, Level.ANY)),
                       **filters)
    if kind < 0.75:  # a few boards on one leaf
        filters = {"model": model} if rng.random() < 0.85 else {"vendor": "NVIDIA"}
        return Request(nodes=rng.randint(2, 4), interconnect=rng.choice((Level.LEAF,) * 7 + (Level.POD,) * 2 + (
            Level.ANY,)), ib=rng.random() < 0.6, **filters)
    if kind < 0.95:  # a leaf-sized job
        return Request(nodes=rng.randint(8, 32), model=model, interconnect=Level.LEAF, ib=rng.random() < 0.8)
    return Request(nodes=rng.randint(40, 128), model=model,  # multi-leaf
                   interconnect=Level.POD if rng.random() < 0.8 else Level.ANY, ib=True)


def gb200_request(rng: random.Random) -> Request:
    kind = rng.random()
    if kind < 0.55:  # part of a rack
        return Request(gpus=rng.choice((4, 8, 16, 16, 32, 36, 48)), model=GB200, interconnect=Level.NVLINK)
    if kind < 0.90:  # a whole rack
        return Request(gpus=72, model=GB200, interconnect=Level.NVLINK, ib=rng.random() < 0.5)
    return Request(gpus=rng.choice((144, 216, 288)), model=GB200, ib=True,  # several racks
                   interconnect=rng.choice((Level.LEAF, Level.POD)))


def amd_request(rng: random.Random) -> Request:
    filters = {"model": MI300X} if rng.random() < 0.7 else {"vendor": "AMD"}
    return Request(nodes=rng.randint(1, 8), interconnect=Level.LEAF, **filters)


CLASSES = {"hgx": (hgx_request, ("H100-SXM5-80GB", "H200-SXM-141GB")), "gb200": (gb200_request, (GB200,)),
           "amd": (amd_request, (MI300X,))}


def demand(request: Request, gpn: int) -> int:
    """GPUs a request holds (whole nodes)."""
    return (request.nodes or -(-request.gpus // gpn)) * gpn


@dataclass(frozen=True)
class Arrival:
    at: float
    request: Request
    duration: float


def trace(nodes: list[Node], requests: int, load: float, seed: int) -> list[Arrival]:
    """Per hardware class, Poisson arrivals offering `load` of its GPUs; merged by time."""
    capacity = {name: sum(n.gpus for n in nodes if n.model in models) for name, (_, models) in CLASSES.items()}
    rate = {}
    for name, (make, _) in CLASSES.items():
        probe = random.Random(f"{seed}-{name}-probe")
        mean = statistics.fmean(demand(r, 4 if r.model == GB200 else 8) for r in (make(probe) for _ in range(4000)))
        rate[name] = load * capacity[name] / mean if capacity[name] else 0.0  # mean duration 1
    span = 1.2 * requests / sum(rate.values())  # then cut at `requests`
    arrivals = []
    for name, (make, _) in CLASSES.items():
        rng, at = random.Random(f"{seed}-{name}"), 0.0
        while rate[name]:
            at += rng.expovariate(rate[name])
            if at > span:
                break
            arrivals.append(Arrival(at, make(rng), rng.expovariate(1.0)))
    arrivals.sort(key=lambda a: a.at)
    return arrivals[:requests]


# -- the baseline ----------------------------------------------------------------------------------------
class FirstFit(FreePool):
    """The first domain at the constraint level with enough free nodes (name order), its first free nodes by
    name; the first model by name that fits."""

    def _domain_for(self, tree, need, limit):
        fits = [domain for domain, count in tree.counts[limit].items() if count >= need]
        return (limit, min(fits)) if fits else None

    def _pick(self, tree, level, domain, need):
        return sorted(tree.nodes_under(level, domain), key=lambda n: n.name)[:need]

    @staticmethod
    def _preference(option):
        return option.shape.model, option.domain


# -- the replay ------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """The q-th percentile, linear between closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def replay(policy: type[FreePool], nodes: list[Node], arrivals: list[Arrival], warmup: float) -> dict:
    pool = policy(nodes)
    models = sorted({n.model for n in nodes})
    gpn = {n.model: n.gpus for n in nodes}
    ends: list[tuple[float, int, tuple[Node, ...]]] = []
    times, placed, refused, multi, tightest = [], 0, 0, 0, 0
    by_level = dict.fromkeys(Level, 0)
    samples = {"nvl72_gpus": [], "leaf_nodes": [], "nvl72_feasible": [], "busy": []} | {m: [] for m in models}
    total_gpus, busy = sum(n.gpus for n in nodes), 0
    start_sampling = int(len(arrivals) * warmup)

    def sample() -> None:
        nonlocal busy
        nvl72 = pool.largest_free(Level.NVLINK, GB200)
        samples["nvl72_gpus"].append(nvl72)
        samples["nvl72_feasible"].append(nvl72 >= 72)
        leaves = {m: pool.largest_free(Level.LEAF, m) // gpn[m] for m in models}
        samples["leaf_nodes"].append(max(leaves.values()))
        for model, free in leaves.items():
            samples[model].append(free)
        samples["busy"].append(busy / total_gpus)

    gc.collect()
    for index, arrival in enumerate(arrivals):
        sampling = index >= start_sampling
        while ends and ends[0][0] <= arrival.at:
            done = heapq.heappop(ends)[2]
            pool.give_back(done)
            busy -= sum(n.gpus for n in done)
            if sampling:
                sample()
        feasible = pool.tightest_feasible(arrival.request)
        t0 = time.perf_counter()
        try:
            placement: Placement | None = pool.place(arrival.request)
        except Unplaceable:
            placement = None
        times.append(time.perf_counter() - t0)
        if placement is None:
            refused += 1
        else:
            placed += 1
            by_level[placement.level] += 1
            pool.take(placement.nodes)
            busy += placement.gpus
            heapq.heappush(ends, (arrival.at + arrival.duration, index, placement.nodes))
            if feasible is not None and len(placement.nodes) > 1:
                multi += 1
                tightest += placement.level is feasible
        if sampling:
            sample()
    return {"p50_ms": round(pct(times, 50) * 1000, 3), "p99_ms": round(pct(times, 99) * 1000, 3),
            "max_ms": round(max(times) * 1000, 3), "placed": placed, "refused": refused,
            "multi_node_feasible": multi, "tightest_share": round(tightest / multi, 4) if multi else None,
            "placed_by_level": {str(k): v for k, v in by_level.items()},
            "mean_largest_free_nvl72_gpus": round(statistics.fmean(samples["nvl72_gpus"]), 2),
            "mean_largest_free_leaf_nodes": round(statistics.fmean(samples["leaf_nodes"]), 2),
            "mean_largest_free_leaf_nodes_by_model": {m: round(statistics.fmean(samples[m]), 2) for m in models},
            "nvl72_feasible_share": round(statistics.fmean(samples["nvl72_feasible"]), 4),
            "mean_gpus_busy": round(statistics.fmean(samples["busy"]), 4), "samples": len(samples["nvl72_gpus"])}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def share(value: float | None) -> str:
    """A share as a percentage, or '-' where there was nothing to share (a trace with no multi-node request)."""
    return f"{value:.2%}" if value is not None else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=4000)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", type=float, default=0.95, help="offered share of each class's GPUs")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of arrivals before sampling starts")
    args = parser.parse_args()
    nodes = fleet(args.nodes)
    arrivals = trace(nodes, args.requests, args.load, args.seed)
    by_model = {m: sum(n.gpus for n in nodes if n.model == m) for m in sorted({n.model for n in nodes})}
    models = ", ".join(f"{m} {g}" for m, g in by_model.items())
    print(f"fleet: {len(nodes)} nodes, {sum(by_model.values())} GPUs ({models}), "
          f"{len({n.leaf for n in nodes})} leaves, {len({n.pod for n in nodes})} pods, "
          f"{len({n.site for n in nodes})} sites, {sum(not n.ib for n in nodes)} nodes without InfiniBand")
    print(f"trace: {len(arrivals)} requests over {arrivals[-1].at:.1f} mean durations, offered load {args.load:.0%}, "
          f"seed {args.seed}")
    results = {}
    for name, policy in (("ours", FreePool), ("first-fit", FirstFit)):
        t0 = time.monotonic()
        results[name] = replay(policy, nodes, arrivals, args.warmup)
        results[name]["replay_s"] = round(time.monotonic() - t0, 1)
    print(f"{'policy':<10} {'p50 ms':>8} {'p99 ms':>8} {'placed':>7} {'refused':>8} {'tightest':>9} "
          f"{'NVL72 GPUs':>11} {'leaf nodes':>11} {'72 fits':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['placed']:>7} {r['refused']:>8} "
              f"{share(r['tightest_share']):>9} {r['mean_largest_free_nvl72_gpus']:>11.2f} "
              f"{r['mean_largest_free_leaf_nodes']:>11.2f} {r['nvl72_feasible_share']:>8.2%}")
    ours, base = results["ours"], results["first-fit"]
    ratios = {key: ratio(ours[key], base[key]) for key in (
        "p99_ms", "placed", "tightest_share", "mean_largest_free_nvl72_gpus", "mean_largest_free_leaf_nodes",
        "nvl72_feasible_share")}
    print("ours / first-fit: " + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    checks = {
        f"p99 decision <= {BAR_P99_MS} ms": ours["p99_ms"] <= BAR_P99_MS,
        f"tightest domain for >= {BAR_TIGHTEST:.0%} of feasible multi-node requests":
            (ours["tightest_share"] or 0) >= BAR_TIGHTEST,
        "fragmentation better than first-fit (larger free NVL72 domains and leaves, 72 GPUs fit more often)":
            ours["mean_largest_free_nvl72_gpus"] > base["mean_largest_free_nvl72_gpus"]
            and ours["mean_largest_free_leaf_nodes"] >= base["mean_largest_free_leaf_nodes"]
            and ours["nvl72_feasible_share"] > base["nvl72_feasible_share"],
    }
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {label}")
    print(json.dumps({"benchmark": "placement", "nodes": len(nodes), "requests": len(arrivals), "seed": args.seed,
                      "load": args.load, "baseline": "first-fit", "policies": results, "ratios": ratios,
                      "pass": all(checks.values())}))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
