# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Kernel tunables in /sys and /proc/sys: read, compare, write what differs, read back.

Selector files (`always [madvise] never`) compare by their bracketed choice, and whitespace is
normalised, so a value the kernel prints back differently is not a change on the next run.
"""

from __future__ import annotations

import errno
import glob
import os

READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def normalise(text: str) -> str:
    """The current choice of a selector file ('always [madvise] never' -> 'madvise'), else the words."""
    words = text.split()
    chosen = [w[1:-1] for w in words if w.startswith("[") and w.endswith("]")]
    return chosen[0] if chosen else " ".join(words)


def read(path: str) -> str:
    with open(path) as handle:
        return normalise(handle.read())


def write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def expand(settings: dict) -> tuple[dict, list]:
    """{path: wanted} for every existing path, and the settings that matched nothing."""
    wanted, missing = {}, []
    for pattern, value in sorted(settings.items()):
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern] * os.path.exists(pattern)
        if not paths:
            missing.append(pattern)
        wanted.update(dict.fromkeys(paths, normalise(str(value))))
    return wanted, missing


def apply(wanted: dict, check_mode: bool) -> dict:
    """Read, compare, write what differs, read back."""
    before = {path: read(path) for path in wanted}
    after, unwritable = dict(before), {}
    for path, value in wanted.items():
        if before[path] == value:
            continue
        if not os.access(path, os.W_OK):  # a read-only mount fails access() with EROFS
            unwritable[path] = "not writable"
            continue
        if check_mode:
            after[path] = value
            continue
        try:
            write(path, value)
        except OSError as exc:
            if exc.errno not in READ_ONLY:
                raise
            unwritable[path] = exc.strerror
        after[path] = read(path)
    short = {p: {"wanted": v, "got": after[p]} for p, v in wanted.items() if after[p] != v and p not in unwritable}
    return {"before": before, "after": after, "unwritable": unwritable, "short": short}


def lines(values: dict) -> str:
    return "".join(f"{path} = {value}\n" for path, value in sorted(values.items()))
