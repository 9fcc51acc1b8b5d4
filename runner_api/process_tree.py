"""Stopping a run for real: every process it started, including Ansible's own workers.

Ansible's worker processes call setsid(), so ansible-runner's kill of ansible-playbook's process
group misses them and the module they run (say `sleep 600`) lives on, reparented to init. The
work horse therefore makes itself a child subreaper (orphans of the run are reparented to it, not
to init) and kills its whole descendant tree when a job is canceled, times out or ends.
"""

import ctypes
import os
import signal
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: fields resume after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    tree, found, todo = _children_map(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_descendants(pid: int | None = None, rounds: int = 5, reap: bool = True) -> int:
    """SIGKILL every descendant of pid (default: this process) until none is left; returns how many.

    reap=False while ansible-runner still watches its child: pexpect must collect that one itself.
    """
    pid = pid or os.getpid()
    killed = 0
    for _ in range(rounds):
        victims = descendants(pid)
        if not victims:
            break
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        if reap:
            _reap()
    return killed


def _reap() -> None:
    """Collect zombies reparented to us, so they do not linger in the process table."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
