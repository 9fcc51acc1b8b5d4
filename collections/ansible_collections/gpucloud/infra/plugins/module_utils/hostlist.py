# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Slurm hostlist expressions: gpu-n[01-04,07] for gpu-n01..gpu-n04 and gpu-n07.

Slurm reads node and switch lists through its hostlist parser, so a partition or switch of thousands of nodes
is one short expression instead of a line long enough to be refused. Only the last run of digits of a name is
ranged, zero padding kept, as Slurm's own `scontrol show hostlist` does.
"""

from __future__ import annotations

import re

_TAIL = re.compile(r"^(.*?)(\d+)$")
# Names Slurm would read as hostlist syntax instead of a name.
SPECIAL = re.compile(r"[\[\],\s=]")


def _key(name: str) -> tuple[str, int, int]:
    match = _TAIL.match(name)
    return (match.group(1), len(match.group(2)), int(match.group(2))) if match else (name, -1, -1)


def compress(names) -> str:
    """One expression for the names (sorted, duplicates dropped)."""
    groups: dict[tuple[str, int], list[int]] = {}
    plain = []
    for name in sorted(set(names), key=_key):
        prefix, width, number = _key(name)
        if width < 0:
            plain.append(name)
        else:
            groups.setdefault((prefix, width), []).append(number)
    parts = []
    for (prefix, width), numbers in sorted(groups.items()):
        if len(numbers) == 1:
            parts.append(f"{prefix}{numbers[0]:0{width}d}")
            continue
        parts.append(f"{prefix}[{','.join(_ranges(numbers, width))}]")
    return ",".join(sorted(plain) + parts)


def _ranges(numbers: list[int], width: int) -> list[str]:
    out, start = [], numbers[0]
    for prev, cur in zip(numbers, [*numbers[1:], None], strict=True):
        if cur is not None and cur == prev + 1:
            continue
        out.append(f"{start:0{width}d}" if start == prev else f"{start:0{width}d}-{prev:0{width}d}")
        start = cur
    return out


def expand(expression: str) -> list[str]:
    """The names of an expression this module writes (prefix[a-b,c]suffix-less terms, comma-joined)."""
    names, depth, term = [], 0, ""
    for char in expression + ",":
        if char == "," and depth == 0:
            if term:
                names.extend(_expand_term(term))
            term = ""
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        term += char
    return names


def _expand_term(term: str) -> list[str]:
    match = re.match(r"^(.*)\[([0-9,\-]+)\]$", term)
    if not match:
        return [term]
    prefix, out = match.group(1), []
    for part in match.group(2).split(","):
        low, _, high = part.partition("-")
        width = len(low)
        out.extend(f"{prefix}{n:0{width}d}" for n in range(int(low), int(high or low) + 1))
    return out
