"""Topology-aware placement on small hand-built fleets: pure, no services."""

import random

import pytest

from runner_api.placement import FreePool, Level, Node, Placement, Request, Unplaceable

H100, H200, GB200, MI300X = "H100-SXM5-80GB", "H200-SXM-141GB", "GB200", "MI300X"


def hgx(name, leaf, pod, site, model=H100, vendor="NVIDIA", memory=80, ib=True, cost=24.0):
    """An 8-GPU HGX-class server: its own NVLink domain."""
    return Node(name, model, vendor, 8, memory, f"nvl8-{name}", leaf, pod, site, ib, hourly_cost=cost)


def rack(name, trays, leaf, pod, site):
    """`trays` free GB200 trays (4 GPUs each) of one NVL72 rack."""
    return [Node(f"{name}-t{i:02d}", GB200, "NVIDIA", 4, 186, f"nvl72-{name}", leaf, pod, site, True, hourly_cost=40.0)
            for i in range(1, trays + 1)]


# dc1/pod1: leaf-a (4 H100), leaf-b (2 H100); dc1/pod2: leaf-c (8 H100, c7 and c8 without InfiniBand), leaf-d (GB200
# racks r1 with all 18 trays free and r2 with 10); dc2/pod3: leaf-e (3 H200, 2 MI300X), leaf-f (2 H100).
FLEET = (
    [hgx(f"a{i}", "leaf-a", "pod1", "dc1") for i in range(1, 5)]
    + [hgx(f"b{i}", "leaf-b", "pod1", "dc1") for i in range(1, 3)]
    + [hgx(f"c{i}", "leaf-c", "pod2", "dc1", ib=i <= 6) for i in range(1, 9)]
    + rack("r1", 18, "leaf-d", "pod2", "dc1") + rack("r2", 10, "leaf-d", "pod2", "dc1")
    + [hgx(f"e{i}", "leaf-e", "pod3", "dc2", model=H200, memory=141, cost=30.0) for i in range(1, 4)]
    + [hgx(f"m{i}", "leaf-e", "pod3", "dc2", model=MI300X, vendor="AMD", memory=192, cost=26.0) for i in (1, 2)]
    + [hgx(f"f{i}", "leaf-f", "pod3", "dc2") for i in (1, 2)]
)


def trays(name, first, last):
    return [f"{name}-t{i:02d}" for i in range(first, last + 1)]


def names(placement: Placement) -> list[str]:
    return [n.name for n in placement.nodes]


PLACED = [
    # the tightest level wins; among equals, the cheaper model
    ("one 8-GPU board", Request(gpus=8), H100, Level.NVLINK, "nvl8-a1", ["a1"]),
    ("a leaf job stays on the tightest leaf", Request(nodes=6, model=H100, interconnect="pod"), H100, Level.LEAF,
     "leaf-c", [f"c{i}" for i in range(1, 7)]),
    # best fit keeps the whole NVL72 rack for a job that needs it
    ("best fit: the partly used rack", Request(gpus=16, model=GB200), GB200, Level.NVLINK, "nvl72-r2",
     trays("r2", 1, 4)),
    ("best fit: exactly the partly used rack", Request(gpus=40, model="gb200"), GB200, Level.NVLINK, "nvl72-r2",
     trays("r2", 1, 10)),
    ("a whole rack", Request(gpus=72, model=GB200, interconnect="nvlink"), GB200, Level.NVLINK, "nvl72-r1",
     trays("r1", 1, 18)),
    ("one tray more than the small rack", Request(gpus=44, model=GB200), GB200, Level.NVLINK, "nvl72-r1",
     trays("r1", 1, 11)),
    ("best fit: the smallest leaf that fits (tie: name)", Request(nodes=2, model=H100, interconnect="leaf"), H100,
     Level.LEAF, "leaf-b", ["b1", "b2"]),
    ("best fit: the next leaf up", Request(nodes=3, model=H100, interconnect="leaf"), H100, Level.LEAF, "leaf-a",
     ["a1", "a2", "a3"]),
    # no pod holds 10: the largest pod whole, then the best-fitting leaf for the rest (leaf-a stays whole)
    ("whole sub-domains, then best fit", Request(nodes=10, model=H100), H100, Level.ANY, "dc1",
     ["b1", "b2"] + [f"c{i}" for i in range(1, 9)]),
    ("whole sub-domains with InfiniBand only", Request(nodes=10, model=H100, ib=True), H100, Level.ANY, "dc1",
     ["a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2", "c3", "c4"]),
    ("GB200 across both racks", Request(gpus=100, model=GB200, interconnect="leaf"), GB200, Level.LEAF, "leaf-d",
     trays("r1", 1, 18) + trays("r2", 1, 7)),
    # vendor-only and memory-only requests weigh every matching model
    ("vendor only: NVLink beats a leaf", Request(gpus=16, vendor="nvidia"), GB200, Level.NVLINK, "nvl72-r2",
     trays("r2", 1, 4)),
    ("memory only: same level and fit, cheaper model", Request(gpus=8, min_gpu_memory_gb=100), MI300X,
     Level.NVLINK, "nvl8-m1", ["m1"]),
    ("vendor and memory", Request(gpus=8, vendor="NVIDIA", min_gpu_memory_gb=100), H200, Level.NVLINK, "nvl8-e1",
     ["e1"]),
    # filters
    ("model, case-insensitive", Request(nodes=1, model="h200-sxm-141gb"), H200, Level.NVLINK, "nvl8-e1", ["e1"]),
    ("vendor, case-insensitive", Request(nodes=2, vendor="amd", interconnect="leaf"), MI300X, Level.LEAF, "leaf-e",
     ["m1", "m2"]),
    ("without InfiniBand any node will do", Request(nodes=8, model=H100, interconnect="leaf"), H100, Level.LEAF,
     "leaf-c", [f"c{i}" for i in range(1, 9)]),
    ("InfiniBand skips the nodes without it", Request(nodes=6, model=H100, interconnect="pod", ib=True), H100,
     Level.LEAF, "leaf-c", [f"c{i}" for i in range(1, 7)]),
    ("InfiniBand spills to the next pod's leaves", Request(nodes=7, model=H100, interconnect="any", ib=True), H100,
     Level.ANY, "dc1", ["a1", "a2", "a3", "a4", "b1", "b2", "c1"]),
]


@pytest.mark.parametrize(("request_", "model", "level", "domain", "nodes"),
                         [case[1:] for case in PLACED], ids=[case[0] for case in PLACED])
def test_placement(request_, model, level, domain, nodes):
    placement = FreePool(FLEET).place(request_)
    assert (placement.model, placement.level, placement.domain, names(placement)) == (model, level, domain, nodes)
    assert placement.gpus == sum(n.gpus for n in placement.nodes)


@pytest.mark.parametrize(("request_", "count", "gpus"), [
    (Request(gpus=1, model=H100), 1, 8),
    (Request(gpus=8, model=H100), 1, 8),
    (Request(gpus=9, model=H100), 2, 16),
    (Request(gpus=5, model=GB200), 2, 8),
    (Request(gpus=72, model=GB200), 18, 72),
    (Request(nodes=2, model=GB200), 2, 8),
    (Request(nodes=3, model=H100), 3, 24),
])
def test_gpus_round_up_to_whole_nodes(request_, count, gpus):
    placement = FreePool(FLEET).place(request_)
    assert (len(placement.nodes), placement.gpus) == (count, gpus)


def test_best_fit_before_cost():
    """A model that fits its domain exactly beats a cheaper one that would break a bigger domain."""
    fleet = [hgx(f"x{i}", "leaf-x", "pod1", "dc1", model="A", cost=10.0) for i in range(4)] + [
        hgx(f"y{i}", "leaf-y", "pod1", "dc1", model="B", cost=20.0) for i in range(2)]
    placement = FreePool(fleet).place(Request(nodes=2, interconnect="leaf"))
    assert (placement.model, names(placement)) == ("B", ["y0", "y1"])


UNPLACEABLE = [
    ("NVLink domain too small", Request(gpus=16, model=H100, interconnect="nvlink"),
     ["needs 16 H100-SXM5-80GB GPUs in one NVLink domain; the largest free domain has 8"]),
    ("leaf too small", Request(nodes=9, model=H100, interconnect="leaf"),
     ["needs 9 H100-SXM5-80GB nodes on one leaf; the largest free leaf has 8"]),
    ("leaf too small with InfiniBand", Request(nodes=7, model=H100, interconnect="leaf", ib=True),
     ["needs 7 H100-SXM5-80GB nodes with InfiniBand on one leaf; the largest free leaf has 6"]),
    ("pod too small", Request(nodes=9, model=H100, interconnect="pod"),
     ["needs 9 H100-SXM5-80GB nodes in one pod; the largest free pod has 8"]),
    ("no site holds it", Request(nodes=15, model=H100),
     ["needs 15 H100-SXM5-80GB nodes in one site; the largest free site has 14", "never spans sites"]),
    ("not enough in total", Request(nodes=40, model=H100), ["needs 40 H100-SXM5-80GB nodes; only 16 are free"]),
    ("not enough in total, rounded", Request(gpus=130, model=H100),
     ["needs 130 H100-SXM5-80GB GPUs (17 whole nodes of 8 GPUs); only 128 are free"]),
    ("rack too small", Request(gpus=74, model=GB200, interconnect="nvlink"),
     ["needs 74 GB200 GPUs (19 whole nodes of 4 GPUs) in one NVLink domain; the largest free domain has 72"]),
    ("vendor only: the closest model", Request(gpus=80, vendor="NVIDIA", interconnect="nvlink"),
     ["needs 80 GB200 GPUs in one NVLink domain; the largest free domain has 72",
      "closest of 3 matching models: GB200, H100-SXM5-80GB, H200-SXM-141GB"]),
    ("one node short", Request(nodes=3, vendor="amd"), ["needs 3 MI300X nodes; only 2 are free"]),
    ("unknown model", Request(gpus=8, model="B200-SXM-180GB"),
     ["no free nodes match model B200-SXM-180GB; free models: GB200 (NVIDIA, 186 GB, 112 free GPUs",
      "H100-SXM5-80GB (NVIDIA, 80 GB, 128 free GPUs, 112 with InfiniBand)", "MI300X (AMD, 192 GB"]),
    ("memory and InfiniBand", Request(gpus=8, model=H100, min_gpu_memory_gb=100, ib=True),
     ["no free nodes match model H100-SXM5-80GB with >= 100 GB GPU memory and InfiniBand; free models:"]),
    ("unknown vendor", Request(nodes=1, vendor="Intel"), ["no free nodes match vendor Intel; free models:"]),
    ("model of another vendor", Request(nodes=1, vendor="AMD", model=H100),
     ["no free nodes match model H100-SXM5-80GB of vendor AMD"]),
]


@pytest.mark.parametrize(("request_", "phrases"), [case[1:] for case in UNPLACEABLE],
                         ids=[case[0] for case in UNPLACEABLE])
def test_unplaceable_says_why(request_, phrases):
    pool = FreePool(FLEET)
    with pytest.raises(Unplaceable) as caught:
        pool.place(request_)
    for phrase in phrases:
        assert phrase in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert pool.tightest_feasible(request_) is None


def test_an_empty_pool_says_so():
    with pytest.raises(Unplaceable, match="no free nodes match any model; no node is free"):
        FreePool([]).place(Request(nodes=1))


@pytest.mark.parametrize(("request_", "level"), [
    (Request(gpus=8), Level.NVLINK),
    (Request(gpus=72, model=GB200), Level.NVLINK),
    (Request(nodes=2, model=H100), Level.LEAF),
    (Request(nodes=9, model=H100), Level.ANY),
    (Request(nodes=7, model=H100, ib=True), Level.ANY),
    (Request(nodes=2, model=H100, interconnect="nvlink"), None),
])
def test_tightest_feasible(request_, level):
    assert FreePool(FLEET).tightest_feasible(request_) == level


@pytest.mark.parametrize(("level", "model", "gpus"), [
    (Level.NVLINK, None, 72), (Level.NVLINK, "gb200", 72), (Level.NVLINK, H100, 8), (Level.LEAF, H100, 64),
    (Level.LEAF, None, 112), (Level.POD, H100, 64), (Level.ANY, H100, 112), (Level.ANY, "B200", 0),
    ("leaf", MI300X, 16),
])
def test_largest_free(level, model, gpus):
    assert FreePool(FLEET).largest_free(level, model) == gpus


def test_take_and_give_back_move_the_free_counts():
    pool = FreePool(FLEET)
    rack_job = pool.place(Request(gpus=72, model=GB200))
    pool.take(rack_job.nodes)
    assert pool.largest_free(Level.NVLINK, GB200) == 40
    with pytest.raises(Unplaceable, match="needs 72 GB200 GPUs; only 40 are free"):
        pool.place(Request(gpus=72, model=GB200, interconnect="nvlink"))
    pool.give_back(rack_job.nodes[1:])
    with pytest.raises(Unplaceable, match="in one NVLink domain; the largest free domain has 68"):
        pool.place(Request(gpus=72, model=GB200, interconnect="nvlink"))
    pool.take(["c1", "c2"])  # names work too
    assert "c1" not in pool and len(pool) == len(FLEET) - 3
    assert pool.largest_free(Level.LEAF, H100) == 48
    pool.give_back(rack_job.nodes[:1])
    assert pool.place(Request(gpus=72, model=GB200)) == rack_job


@pytest.mark.parametrize(("call", "nodes"), [
    ("take", ["a1", "nope"]), ("take", ["a1", "a1"]), ("give_back", [FLEET[0]]), ("give_back", [FLEET[0], FLEET[0]]),
])
def test_take_and_give_back_are_all_or_nothing(call, nodes):
    pool = FreePool(FLEET[1:] if call == "give_back" and len(nodes) == 2 else FLEET)
    before = pool.place(Request(nodes=4, model=H100, interconnect="leaf"))
    with pytest.raises(ValueError, match=r"not free or named twice|free already or named twice"):
        getattr(pool, call)(nodes)
    assert pool.place(Request(nodes=4, model=H100, interconnect="leaf")) == before
    assert len(pool) == len(FLEET) - (call == "give_back" and len(nodes) == 2)


PROBES = [Request(gpus=8), Request(gpus=16, model=GB200), Request(nodes=3, model=H100, interconnect="leaf"),
          Request(nodes=5, model=H100, ib=True), Request(gpus=32, vendor="NVIDIA", min_gpu_memory_gb=100),
          Request(nodes=2, vendor="AMD", interconnect="leaf")]


def decisions(pool: FreePool) -> list:
    out = []
    for probe in PROBES:
        try:
            out.append((pool.place(probe), pool.tightest_feasible(probe)))
        except Unplaceable as exc:
            out.append(exc.reason)
    return out + [pool.largest_free(level, model) for level in Level for model in (None, H100, GB200)]


def test_incremental_indexes_match_a_rebuild():
    """After any mix of takes and give-backs the pool decides as one built afresh from the same free nodes."""
    rng = random.Random(7)
    pool, held = FreePool(FLEET), []
    for _ in range(150):
        if held and rng.random() < 0.4:
            pool.give_back(held.pop(rng.randrange(len(held))))
        else:
            try:
                placement = pool.place(rng.choice(PROBES))
            except Unplaceable:
                continue
            pool.take(placement.nodes)
            held.append(placement.nodes)
        taken = {n.name for nodes in held for n in nodes}
        assert decisions(pool) == decisions(FreePool(n for n in FLEET if n.name not in taken))


def test_decisions_do_not_depend_on_input_order():
    shuffled = list(FLEET)
    random.Random(3).shuffle(shuffled)
    for case in PLACED:
        assert FreePool(shuffled).place(case[1]) == FreePool(reversed(FLEET)).place(case[1])


@pytest.mark.parametrize("kwargs", [{}, {"gpus": 8, "nodes": 1}, {"gpus": 0}, {"nodes": -1},
                                    {"nodes": 1, "interconnect": "rack"}, {"nodes": 1, "min_gpu_memory_gb": -1}])
def test_malformed_requests_are_refused(kwargs):
    with pytest.raises(ValueError):
        Request(**kwargs)


def test_interconnect_accepts_its_name():
    assert Request(nodes=1, interconnect="leaf").interconnect is Level.LEAF
    assert [level.rank for level in Level] == [0, 1, 2, 3]
