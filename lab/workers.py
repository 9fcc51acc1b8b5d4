"""One lab per test worker: `make test` runs pytest in TEST_WORKERS (3) parallel workers (pytest-xdist), each on a
lab of its own.

Tests restore NetBox from a dump, flush Redis databases, change the emulated BMCs' BIOS and start daemons under the
lab's supervisord, so two workers never share a lab. Worker 0 (`gw0`, or a run without workers) uses the lab that
`make test` seeded (the checkout's `.state/`, the configured ports); worker N gets `.state/workers/gwN/` and every
port moved by N x PORT_STRIDE (PostgreSQL, Redis, NetBox, the runner API and the artifact server beside it), the BMC
emulators on BMC_PORT_BASE + N (the same 127.100.x.y addresses, another port) and its Slurm daemons
SLURM_PORT_STRIDE x N above the lab's. Everything else the lab names (network namespaces, /var/lib/gpucloud-lab,
supervisord, the virtual-media lab) is already derived from the state directory, so worker labs never meet.

The caches stay shared (`~/.cache/gpucloud`: NetBox's and sushy-tools' virtualenvs, the lab secrets, the migrated and
fleet dumps): the test session brings worker 0's lab up and seeds it before any worker starts (tests/conftest.py), so
on a cold machine they are built once, and worker labs only restore them.
"""

import dataclasses
import os

from lab.settings import Settings, load

WORKER_ENV = "PYTEST_XDIST_WORKER"  # gw0, gw1, ... (set by pytest-xdist in each worker process)
PORT_STRIDE = 100
BMC_PORT_BASE = 10443
SLURM_PORT_STRIDE = 1000  # a slurmd per server at base + NetBox id (the test fleet's ids stay below 1000)
MAX_WORKERS = 9  # slurmctld listens 10000 above the base: worker 10's slurmds would meet worker 0's slurmctld


def index(name: str | None) -> int:
    """gw3 -> 3; no worker (a plain pytest run) -> 0."""
    if not name:
        return 0
    digits = name.removeprefix("gw")
    if not digits.isdigit():
        raise ValueError(f"{WORKER_ENV}: expected gw<N>, got {name!r}")
    return int(digits)


def settings(s: Settings, n: int) -> Settings:
    """Worker n's lab beside the configured one s (worker 0's)."""
    if n == 0:
        return s
    return dataclasses.replace(
        s, state=s.state / "workers" / f"gw{n}", pg_port=s.pg_port + n * PORT_STRIDE,
        redis_port=s.redis_port + n * PORT_STRIDE, netbox_port=s.netbox_port + n * PORT_STRIDE,
        api_port=s.api_port + n * PORT_STRIDE, slurm_port_base=s.slurm_port_base + n * SLURM_PORT_STRIDE)


def environment(s: Settings, n: int) -> dict[str, str]:
    """The variables that give worker n a lab of its own (none for worker 0: it uses the configured lab)."""
    if n == 0:
        return {}
    w = settings(s, n)
    return {"GPUCLOUD_STATE": str(w.state), "GPUCLOUD_PG_PORT": str(w.pg_port),
            "GPUCLOUD_REDIS_PORT": str(w.redis_port), "GPUCLOUD_NETBOX_PORT": str(w.netbox_port),
            "GPUCLOUD_API_PORT": str(w.api_port), "GPUCLOUD_SLURM_PORT_BASE": str(w.slurm_port_base),
            "GPUCLOUD_LAB_BMC_PORT": str(BMC_PORT_BASE + n),
            # ansible.cfg keeps the fact cache under the checkout's .state: one per lab. (The inventory cache is
            # shared: its key holds the NetBox URL, which differs per lab.)
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(w.state / "facts")}


def started(s: Settings) -> list[int]:
    """The workers whose labs have a state directory beside s (worker 0's, which is s itself, not included)."""
    root = s.state / "workers"
    if not root.is_dir():
        return []
    return sorted(index(d.name) for d in root.glob("gw*") if d.is_dir() and d.name[2:].isdigit())


def configure() -> int:
    """Point this process (and what it starts) at its worker's lab; returns the worker's number."""
    n = index(os.environ.get(WORKER_ENV))
    if n > MAX_WORKERS:
        raise ValueError(f"{WORKER_ENV}: at most {MAX_WORKERS + 1} workers (gw0..gw{MAX_WORKERS}), got gw{n}")
    os.environ.update(environment(load(), n))
    return n
