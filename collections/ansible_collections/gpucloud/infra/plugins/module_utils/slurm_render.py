# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Render the structured Slurm config (slurm_config) with slurm_templates/, and check the files offline.

The checks read the rendered files back the way Slurm does (key=value tokens, hostlists) and refuse what
slurmctld would refuse or quietly mishandle: unknown nodes in partitions, switches or gres lines, a GRES count
that differs from its device files, a topology that is not one tree (Slurm then never spans the parts) or a
switch with both nodes and switches, nodes outside every block, blocks below BlockSizes' base or of unequal
size before 24.05. The CI test also runs the files on a real slurmctld (22.05); for the versions that cannot run
here (topology/block) these checks are what stands in for it.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from ansible_collections.gpucloud.infra.plugins.module_utils import hostlist, slurm_config

TEMPLATE_DIR = Path(__file__).resolve().parent / "slurm_templates"
FILES = ("slurm.conf", "gres.conf", "topology.conf", "cgroup.conf")


def render(config: dict) -> dict[str, str]:
    """{file name: text}; topology.conf only when a topology plugin needs one."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    names = [f for f in FILES if f != "topology.conf" or config["topology"]]
    return {name: env.get_template(f"{name}.j2").render(**config) for name in names}


def parse(text: str) -> list[tuple[int, list[tuple[str, str]]]]:
    """(line number, [(key, value)]) of each non-comment line."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        body = raw.split("#", 1)[0].strip()
        if body:
            out.append((number, [tuple(token.split("=", 1)) if "=" in token else (token, "")
                                 for token in body.split()]))
    return out


def _first(pairs, key: str):
    return next((v for k, v in pairs if k.lower() == key.lower()), None)


def _slurm_conf(text: str) -> tuple[list[str], dict[str, dict], str | None]:
    """(errors, {node: its pairs as a dict}, TopologyPlugin)."""
    errors, nodes, partitions, defaults, globals_ = [], {}, [], [], {}
    for number, pairs in parse(text):
        head = pairs[0][0].lower()
        if head == "nodename":
            name = pairs[0][1]
            if name in nodes:
                errors.append(f"slurm.conf:{number}: NodeName {name} is defined twice")
            nodes[name] = {k.lower(): v for k, v in pairs}
        elif head == "partitionname":
            partitions.append((number, pairs))
            if (_first(pairs, "Default") or "").upper() == "YES":
                defaults.append(pairs[0][1])
        else:
            for key, value in pairs:
                globals_.setdefault(key.lower(), []).append(value)
    for key in ("clustername", "slurmctldhost", "slurmctldport"):
        if key not in globals_:
            errors.append(f"slurm.conf: no {key} line")
    for number, pairs in partitions:
        unknown = [n for n in hostlist.expand(_first(pairs, "Nodes") or "") if n not in nodes]
        if unknown:
            errors.append(f"slurm.conf:{number}: partition {pairs[0][1]} names unknown nodes {', '.join(unknown)}")
    if partitions and len(defaults) != 1:
        errors.append(f"slurm.conf: exactly one partition must be Default=YES, found {len(defaults)}")
    return errors, nodes, (globals_.get("topologyplugin") or [None])[0]


def _gres_conf(text: str, nodes: dict[str, dict]) -> list[str]:
    errors, counted = [], {}
    for number, pairs in parse(text):
        files = hostlist.expand(_first(pairs, "File") or "")
        for name in hostlist.expand(_first(pairs, "NodeName") or ""):
            if name not in nodes:
                errors.append(f"gres.conf:{number}: unknown node {name}")
                continue
            counted[name] = counted.get(name, 0) + len(files)
    for name, node in nodes.items():
        gres = node.get("gres")
        want = int(gres.rsplit(":", 1)[1]) if gres else 0
        if counted.get(name, 0) != want:
            errors.append(f"gres.conf: node {name} has Gres={gres} but {counted.get(name, 0)} device files")
    return errors


def _tree(text: str, nodes: dict[str, dict]) -> list[str]:
    errors, switches, leaf_of = [], {}, {}
    for number, pairs in parse(text):
        name = _first(pairs, "SwitchName")
        if name in switches:
            errors.append(f"topology.conf:{number}: switch {name} is defined twice")
        members, children = _first(pairs, "Nodes"), _first(pairs, "Switches")
        if (members is None) == (children is None):
            errors.append(f"topology.conf:{number}: switch {name} needs Nodes or Switches, not both or neither")
        switches[name] = hostlist.expand(children or "")
        for node in hostlist.expand(members or ""):
            if node not in nodes:
                errors.append(f"topology.conf:{number}: switch {name} names unknown node {node}")
            elif node in leaf_of:
                errors.append(f"topology.conf:{number}: node {node} is also under {leaf_of[node]}")
            leaf_of.setdefault(node, name)
    children = {c for kids in switches.values() for c in kids}
    errors += [f"topology.conf: switch {c} is a child but never defined" for c in sorted(children - set(switches))]
    outside = sorted(set(nodes) - set(leaf_of))
    if outside:
        errors.append(f"topology.conf: nodes {hostlist.compress(outside)} are under no switch")
    roots = sorted(set(switches) - children)
    if len(roots) != 1:
        errors.append(f"topology.conf: one switch must reach every node, the tops are {', '.join(roots)}")
    return errors


def _blocks(text: str, nodes: dict[str, dict], version: tuple) -> list[str]:
    errors, block_of, sizes, base = [], {}, {}, None
    for number, pairs in parse(text):
        if pairs[0][0].lower() == "blocksizes":
            values = [int(v) for v in pairs[0][1].split(",")]
            base = values[0]
            bad = [v for v in values[1:] if v % base or (v // base) & (v // base - 1)]
            if bad:
                errors.append(f"topology.conf:{number}: BlockSizes {bad} are not the base {base} times a power of 2")
            continue
        name = _first(pairs, "BlockName")
        members = hostlist.expand(_first(pairs, "Nodes") or "")
        sizes[name] = len(members)
        for node in members:
            if node in block_of:
                errors.append(f"topology.conf:{number}: node {node} is also in block {block_of[node]}")
            block_of.setdefault(node, name)
    outside = sorted(set(nodes) - set(block_of))
    if outside:
        errors.append(f"topology.conf: nodes {hostlist.compress(outside)} are in no block")
    if version < slurm_config.BLOCK_SIZES_FROM and len(set(sizes.values())) > 1:
        errors.append(f"topology.conf: Slurm before 24.05 needs blocks of one size, got {sizes}")
    if base is not None:
        small = sorted(name for name, size in sizes.items() if size < base)
        if small:
            errors.append(f"topology.conf: blocks {', '.join(small)} are smaller than the base size {base}")
    return errors


def check(files: dict[str, str], version: str) -> list[str]:
    """Every problem of the rendered files, each as "file:line: message"."""
    errors, nodes, plugin = _slurm_conf(files["slurm.conf"])
    errors += _gres_conf(files.get("gres.conf", ""), nodes)
    if plugin == "topology/tree":
        errors += _tree(files.get("topology.conf", ""), nodes)
    elif plugin == "topology/block":
        errors += _blocks(files.get("topology.conf", ""), nodes, slurm_config.version(version))
    return errors
