"""Topology-aware node selection: which free nodes a cluster of N GPUs (or N whole nodes) gets.

Pure and in memory (no NetBox, no Redis): the caller builds a FreePool from the free nodes, asks place() for a
decision, and take()s the nodes once the reservation is recorded.

Topology, tightest first: a node's NVLink domain (one HGX board, or the 18 trays of a GB200 NVL72 rack), its
leaf switch, its pod (the leaves behind one set of spines) and its site. A domain is named by its whole path
(site, pod, leaf, NVLink domain), so equal names under different parents never merge.

Policy: a placement is homogeneous (one GPU model, one shape of node) and nodes are allocated whole. Levels are
tried from NVLink up to the request's interconnect constraint; at the first level where some domain holds enough
free matching nodes, the domain with the least free capacity that still fits wins (best fit, so big domains stay
whole for the jobs that need them). Inside it, nodes are picked the same way one level down: the best-fitting
child if one holds the remainder, otherwise whole children, largest first, then the best fit for what is left.
Every tie is broken by name, so the same pool and request always give the same nodes.

Free counts per (node shape, level, domain) are kept up to date by take() and give_back(), so a decision costs
a pass over distinct free counts and a few children per level, not a scan of the fleet.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import NamedTuple


class Level(StrEnum):
    """How tightly a cluster's nodes must be connected, tightest first.

    ANY still means one site: a cluster never spans sites (its tenant network and InfiniBand partition end at the
    site's fabric).
    """

    NVLINK = "nvlink"
    LEAF = "leaf"
    POD = "pod"
    ANY = "any"

    @property
    def rank(self) -> int:
        """0 for NVLINK up to 3 for ANY (the members compare as strings, not by tightness)."""
        return RANK[self]


LEVELS = tuple(Level)
RANK = {level: rank for rank, level in enumerate(LEVELS)}
# How a message names one domain of each level: "in one NVLink domain; the largest free domain has 8".
SCOPE = {Level.NVLINK: ("in one NVLink domain", "domain"), Level.LEAF: ("on one leaf", "leaf"),
         Level.POD: ("in one pod", "pod"), Level.ANY: ("in one site", "site")}


@dataclass(frozen=True)
class Node:
    name: str
    model: str  # GPU model, e.g. H100-SXM5-80GB
    vendor: str  # GPU vendor, e.g. NVIDIA
    gpus: int
    gpu_memory_gb: int
    nvlink_domain: str
    leaf: str
    pod: str
    site: str
    ib: bool
    cpus: int = 0
    memory_gb: int = 0
    storage_tb: float = 0.0
    hourly_cost: float = 0.0
    id: int | None = None  # the NetBox device id, when the node came from NetBox


@dataclass(frozen=True)
class Request:
    """Exactly one of `gpus` (rounded up to whole nodes) or `nodes`. Filters match case-insensitively."""

    gpus: int | None = None
    nodes: int | None = None
    vendor: str | None = None
    model: str | None = None
    min_gpu_memory_gb: int = 0
    interconnect: Level = Level.ANY
    ib: bool = False

    def __post_init__(self):
        if (self.gpus is None) == (self.nodes is None):
            raise ValueError("a placement request needs exactly one of gpus or nodes")
        if (self.gpus if self.nodes is None else self.nodes) <= 0:
            raise ValueError("the gpus or nodes of a placement request must be positive")
        if self.min_gpu_memory_gb < 0:
            raise ValueError("min_gpu_memory_gb must not be negative")
        object.__setattr__(self, "interconnect", Level(self.interconnect))  # "leaf" from a JSON body works too


@dataclass(frozen=True)
class Placement:
    nodes: tuple[Node, ...]  # by name
    model: str
    level: Level  # the tightest domain that holds every chosen node ...
    domain: str  # ... and its name (an NVLink domain, leaf, pod or site)
    gpus: int  # GPUs of the chosen nodes: at least the request's, more when it rounded up to whole nodes


class Unplaceable(Exception):
    """No free nodes can hold the request now; `reason` names the request and the limit that binds."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Shape(NamedTuple):
    """Nodes that are interchangeable for a placement: a placement never mixes shapes."""

    model: str
    vendor: str
    gpus: int
    gpu_memory_gb: int


def shape_of(node: Node) -> Shape:
    return Shape(node.model, node.vendor, node.gpus, node.gpu_memory_gb)


def paths(node: Node) -> tuple[tuple[str, ...], ...]:
    """The node's domain at each level, tightest first, as full paths: (site, pod, leaf, nvlink) up to (site,)."""
    full = (node.site, node.pod, node.leaf, node.nvlink_domain)
    return full, full[:3], full[:2], full[:1]


def enclosing(nodes: Iterable[Node]) -> tuple[Level, str]:
    """The tightest domain holding every node, and its name."""
    per_node = [paths(n) for n in nodes]
    for level in LEVELS:
        domains = {p[level.rank] for p in per_node}
        if len(domains) == 1:
            return level, domains.pop()[-1]
    raise ValueError("the nodes span sites")


def twice(names: list[str]) -> set[str]:
    return {name for name, count in Counter(names).items() if count > 1}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Tree:
    """The free nodes of one shape (all of them, or only those with InfiniBand), counted per domain."""

    __slots__ = ("buckets", "children", "counts", "members", "shape", "total")

    def __init__(self, shape: Shape):
        self.shape = shape
        self.total = 0
        self.counts: dict[Level, dict[tuple, int]] = {level: {} for level in LEVELS}  # domain -> free nodes
        # free nodes -> the domains with exactly that many: best fit and largest look at distinct counts only
        self.buckets: dict[Level, dict[int, set[tuple]]] = {level: {} for level in LEVELS}
        self.children: dict[Level, dict[tuple, set[tuple]]] = {level: {} for level in LEVELS[1:]}
        self.members: dict[tuple, dict[str, Node]] = {}  # NVLink domain -> its free nodes by name

    def add(self, node: Node, domains: tuple[tuple[str, ...], ...]) -> None:
        """Count a free node in `domains`, its paths(): its domain at each level, tightest first."""
        for level, domain in zip(LEVELS, domains, strict=True):
            self._count(level, domain, 1)
        for level, (child, parent) in zip(LEVELS[1:], pairwise(domains), strict=True):
            self.children[level].setdefault(parent, set()).add(child)
        self.members.setdefault(domains[0], {})[node.name] = node
        self.total += 1

    def remove(self, node: Node, domains: tuple[tuple[str, ...], ...]) -> None:
        for level, domain in zip(LEVELS, domains, strict=True):
            self._count(level, domain, -1)
        del self.members[domains[0]][node.name]
        self.total -= 1

    def _count(self, level: Level, domain: tuple, delta: int) -> None:
        counts, buckets = self.counts[level], self.buckets[level]
        old = counts.get(domain, 0)
        new = old + delta
        if old:
            bucket = buckets[old]
            bucket.discard(domain)
            if not bucket:
                del buckets[old]
        if new:
            counts[domain] = new
            buckets.setdefault(new, set()).add(domain)
        else:
            counts.pop(domain, None)

    def largest(self, level: Level) -> int:
        """The most free nodes in one domain of `level`."""
        return max(self.buckets[level], default=0)

    def best_fit(self, level: Level, need: int) -> tuple | None:
        """The domain of `level` with the fewest free nodes that still holds `need` (tie: name, compared as the
        path site, pod, leaf, NVLink domain)."""
        buckets = self.buckets[level]
        fits = [count for count in buckets if count >= need]
        return min(buckets[min(fits)]) if fits else None

    def free_children(self, level: Level, domain: tuple) -> list[tuple[int, tuple]]:
        """(free nodes, child) for the children of `domain` (one level tighter, above NVLink) that have free
        nodes."""
        counts = self.counts[LEVELS[level.rank - 1]]
        return [(counts[child], child) for child in self.children[level].get(domain, ()) if child in counts]

    def nodes_under(self, level: Level, domain: tuple) -> list[Node]:
        """Every free node of `domain` (in no particular order)."""
        if level is Level.NVLINK:
            return list(self.members.get(domain, {}).values())
        tighter = LEVELS[level.rank - 1]
        return [node for _, child in self.free_children(level, domain) for node in self.nodes_under(tighter, child)]


class Option(NamedTuple):
    """One shape's answer to a request, before the shapes are compared."""

    level: Level  # of the domain the nodes were chosen in
    spare_gpus: int  # that domain's free GPUs beyond the request's: the lower, the better the fit
    cost: float  # total hourly cost of the chosen nodes
    shape: Shape
    domain: tuple
    nodes: tuple[Node, ...]


class FreePool:
    """The free nodes, indexed for placement. place() decides; take() and give_back() change what is free.

    A subclass may change the policy through _domain_for, _pick and _preference (bench/placement.py's first-fit
    baseline does); messages, indexes and tightest_feasible stay the same.
    """

    def __init__(self, nodes: Iterable[Node]):
        self._free: dict[str, Node] = {}
        self._trees: dict[tuple[Shape, bool], Tree] = {}  # (shape, only nodes with InfiniBand) -> its tree
        self.give_back(nodes)

    def __len__(self) -> int:
        return len(self._free)

    def __contains__(self, name: str) -> bool:
        return name in self._free

    # -- what is free ------------------------------------------------------------------------------------
    def take(self, nodes: Iterable[Node | str]) -> None:
        """Remove nodes (or node names) from the free pool; all or none, each must be free."""
        names = [n if isinstance(n, str) else n.name for n in nodes]
        bad = sorted({n for n in names if n not in self._free} | twice(names))
        if bad:
            raise ValueError(f"cannot take nodes that are not free or named twice: {', '.join(bad)}")
        for name in names:
            node = self._free.pop(name)
            domains = paths(node)
            for tree in self._trees_of(node):
                tree.remove(node, domains)

    def give_back(self, nodes: Iterable[Node]) -> None:
        """Make nodes free again (as given: a node may come back with new attributes); all or none."""
        nodes = list(nodes)
        names = [n.name for n in nodes]
        bad = sorted({n for n in names if n in self._free} | twice(names))
        if bad:
            raise ValueError(f"cannot give back nodes that are free already or named twice: {', '.join(bad)}")
        for node in nodes:
            self._free[node.name] = node
            domains = paths(node)
            for tree in self._trees_of(node):
                tree.add(node, domains)

    def _trees_of(self, node: Node) -> list[Tree]:
        shape = shape_of(node)
        trees = []
        for key in ((shape, False), (shape, True)) if node.ib else ((shape, False),):
            if key not in self._trees:
                self._trees[key] = Tree(shape)
            trees.append(self._trees[key])
        return trees

    def largest_free(self, level: Level, model: str | None = None) -> int:
        """The most free GPUs in one domain of `level`, of one shape (a placement never mixes models), optionally
        of one model."""
        level, wanted = Level(level), model.casefold() if model else None
        return max((tree.largest(level) * shape.gpus for (shape, ib_only), tree in self._trees.items()
                    if not ib_only and (wanted is None or shape.model.casefold() == wanted)), default=0)

    def tightest_feasible(self, request: Request) -> Level | None:
        """The tightest level, within the request's interconnect constraint, at which some domain holds it now;
        None when place() would raise Unplaceable."""
        ranks = []
        for tree in self._matching(request):
            need = self._need(request, tree.shape)
            ranks += [next((lv.rank for lv in LEVELS[:request.interconnect.rank + 1] if tree.largest(lv) >= need),
                           len(LEVELS))]
        best = min(ranks, default=len(LEVELS))
        return LEVELS[best] if best < len(LEVELS) else None

    # -- deciding ------------------------------------------------------------------------------------------
    def place(self, request: Request) -> Placement:
        """The nodes the request should get; decides only (take() them once reserved). Raises Unplaceable."""
        trees = self._matching(request)
        if not trees:
            raise Unplaceable(self._no_match(request))
        options, shortfalls = [], []
        for tree in trees:
            need = self._need(request, tree.shape)
            found = self._domain_for(tree, need, request.interconnect)
            if found is None:
                shortfalls.append(self._shortfall(tree, need, request))
                continue
            level, domain = found
            nodes = tuple(sorted(self._pick(tree, level, domain, need), key=lambda n: n.name))
            requested = request.gpus or need * tree.shape.gpus
            options.append(Option(level, tree.counts[level][domain] * tree.shape.gpus - requested,
                                  sum(n.hourly_cost for n in nodes), tree.shape, domain, nodes))
        if not options:
            _, message = max(shortfalls, key=lambda s: s[0])  # the first of equals: shapes are in name order
            models = sorted({t.shape.model for t in trees})
            if len(models) > 1:
                message += f" (the closest of {len(models)} matching models: {', '.join(models)})"
            raise Unplaceable(message)
        best = min(options, key=self._preference)
        level, domain = enclosing(best.nodes)
        return Placement(best.nodes, best.shape.model, level, domain, sum(n.gpus for n in best.nodes))

    def _matching(self, request: Request) -> list[Tree]:
        """The trees of the shapes the request's filters allow that have free nodes, by shape."""
        model, vendor = (v.casefold() if v else None for v in (request.model, request.vendor))
        return [tree for (shape, ib_only), tree in sorted(self._trees.items())
                if ib_only == request.ib and tree.total
                and (model is None or shape.model.casefold() == model)
                and (vendor is None or shape.vendor.casefold() == vendor)
                and shape.gpu_memory_gb >= request.min_gpu_memory_gb
                and (shape.gpus > 0 or request.gpus is None)]

    @staticmethod
    def _need(request: Request, shape: Shape) -> int:
        return request.nodes or -(-request.gpus // shape.gpus)

    def _domain_for(self, tree: Tree, need: int, limit: Level) -> tuple[Level, tuple] | None:
        """The tightest level with a domain that fits, and its best-fitting domain there."""
        for level in LEVELS[:limit.rank + 1]:
            domain = tree.best_fit(level, need)
            if domain is not None:
                return level, domain
        return None

    def _pick(self, tree: Tree, level: Level, domain: tuple, need: int) -> list[Node]:
        """`need` free nodes of `domain`: the best-fitting child if one holds them all; else whole children,
        largest first, while they fit in what is left, then the best-fitting child for the rest."""
        if level is Level.NVLINK:
            members = tree.members[domain]
            return [members[name] for name in sorted(members)[:need]]
        tighter = LEVELS[level.rank - 1]
        children = tree.free_children(level, domain)
        fits = [(count, child) for count, child in children if count >= need]
        if fits:
            return self._pick(tree, tighter, min(fits)[1], need)
        picked: list[Node] = []
        ordered = sorted(children, key=lambda c: (-c[0], c[1]))
        for i, (count, child) in enumerate(ordered):
            if count > need:
                rest = min((c, ch) for c, ch in ordered[i:] if c >= need)[1]
                return picked + self._pick(tree, tighter, rest, need)
            picked += self._pick(tree, tighter, child, count)
            need -= count
            if not need:
                break
        return picked

    @staticmethod
    def _preference(option: Option) -> tuple:
        """Tightest level, then best fit, then lower cost, then name."""
        return option.level.rank, option.spare_gpus, option.cost, option.shape.model, option.domain

    # -- explaining ----------------------------------------------------------------------------------------
    @staticmethod
    def _shortfall(tree: Tree, need: int, request: Request) -> tuple[float, str]:
        """(how close the shape came, 0..1; the message) for a shape that cannot hold the request."""
        shape = tree.shape
        ib = " with InfiniBand" if request.ib else ""
        if request.gpus:
            rounded = request.gpus != need * shape.gpus
            wanted = f"{request.gpus} {shape.model} GPUs{ib}" + (
                f" ({plural(need, 'whole node')} of {shape.gpus} GPUs)" if rounded else "")
        else:
            wanted = f"{plural(need, f'{shape.model} node')}{ib}"
        unit = shape.gpus if request.gpus else 1
        if tree.total < need:
            free = tree.total * unit
            return tree.total / need, f"needs {wanted}; only {free} {'is' if free == 1 else 'are'} free"
        limit = request.interconnect
        have = tree.largest(limit)
        where, noun = SCOPE[limit]
        why = " (a cluster never spans sites)" if limit is Level.ANY else ""
        return have / need, f"needs {wanted} {where}; the largest free {noun} has {have * unit}{why}"

    def _no_match(self, request: Request) -> str:
        if request.model:
            subject = f"model {request.model}" + (f" of vendor {request.vendor}" if request.vendor else "")
        else:
            subject = f"vendor {request.vendor}" if request.vendor else "any model"
        limits = ([f">= {request.min_gpu_memory_gb} GB GPU memory"] if request.min_gpu_memory_gb else []) + (
            ["InfiniBand"] if request.ib else [])
        wanted = subject + (f" with {' and '.join(limits)}" if limits else "")
        free = []
        for (shape, ib_only), tree in sorted(self._trees.items()):
            if ib_only or not tree.total:
                continue
            with_ib = self._trees.get((shape, True))
            free.append(f"{shape.model} ({shape.vendor}, {shape.gpu_memory_gb} GB, {tree.total * shape.gpus} "
                        f"free GPUs, {(with_ib.total if with_ib else 0) * shape.gpus} with InfiniBand)")
        return f"no free nodes match {wanted}; " + (f"free models: {', '.join(free)}" if free else "no node is free")
