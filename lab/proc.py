"""Processes the lab starts: run commands, track daemons by pid file, wait for ports."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class LabError(Exception):
    """A lab step failed; the message says which and what to look at."""


def run(cmd: list[str], *, log: Path | None = None, env: dict | None = None, user: str | None = None,
        cwd: Path | None = None, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a command to completion; on failure raise LabError with the tail of its output."""
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if log:
        with log.open("ab") as fh:
            fh.write(proc.stdout)
    if check and proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace").strip().splitlines()[-15:]
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))
    return proc


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def stop_pid(pidfile: Path, name: str, timeout: float = 20.0) -> bool:
    """Stop the process recorded in pidfile (and only it); True when something was stopped."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and read_pid(pidfile) == pid:
        if _is_zombie_or_gone(pid):
            break
        time.sleep(0.1)
    else:
        if read_pid(pidfile) == pid:
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    print(f"  stopped {name} (pid {pid})")
    return True


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].startswith("Z")
    except OSError:
        return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for(predicate, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    hint = f"; see {log}" if log else ""
    raise LabError(f"{what} did not come up within {timeout:.0f}s{hint}")


def changed_per_host(output: str) -> dict[str, int]:
    """changed= of each host in ansible-playbook's PLAY RECAP."""
    hosts = {}
    for line in output.splitlines():
        if " : ok=" in line:
            host, rest = line.split(" : ", 1)
            hosts[host.strip()] = int(rest.split("changed=")[1].split()[0])
    return hosts


def recap_summary(output: str, noun: str = "nodes") -> str:
    """'N nodes, M changed' of an ansible-playbook run."""
    hosts = changed_per_host(output)
    return f"{len(hosts)} {noun}, {sum(1 for c in hosts.values() if c)} changed"
