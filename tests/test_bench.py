"""Every bench in bench/ at its smoke size: it starts, runs both contenders on the real lab and prints its figure
beside the baseline's, so a bench that no longer starts fails CI instead of rotting.

Figures are printed, never asserted on (no timed assertions in tests): a smoke size is far too small for a bench's
bars, so the check is that the run ended and its last line, one JSON object, holds what the full run reports.
`make bench-<name>` runs the full sizes.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from lab import workers

pytestmark = [pytest.mark.netbox, pytest.mark.slow]


def bench(name: str, *args: str, bars_may_fail: bool = False) -> dict:
    """Run bench/<name>.py with the test's lab environment; its summary (the last line)."""
    proc = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    tail = proc.stdout[-4000:] + proc.stderr[-3000:]
    # placement exits 1 when its bars are missed, which they are at a smoke size; it still printed its figures.
    assert proc.returncode == 0 or (bars_may_fail and proc.returncode == 1), tail
    lines = proc.stdout.strip().splitlines()
    assert lines, tail
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == name, tail
    print(proc.stdout[-2500:])  # the figures, for whoever reads the log (pytest -rP)
    return summary


def test_placement():
    out = bench("placement", "--nodes", "400", "--requests", "400", bars_may_fail=True)
    assert set(out["policies"]) == {"ours", "first-fit"} and out["baseline"] == "first-fit"
    assert all(p["placed"] + p["refused"] > 0 for p in out["policies"].values())


def test_schedulers(lab_env, fleet):
    out = bench("schedulers", "--repeat", "1", "--sizes", "64", "--nodes", "4")
    rows = out["fleet"]["runs"]
    assert {rows[f"{who}, all up"]["nodes_in_config"] for who in ("ours", "baseline")} == {4}
    assert rows["ours, one down"]["nodes_in_config"] == 4  # NetBox's facts: a node that is down is still planned


def test_inventory(lab_env, fleet):
    out = bench("inventory", "--nodes", "32", "--runs", "1", "--baseline-runs", "1")
    results = out["results"]
    assert set(results) == {"ours_cold", "ours_warm", "baseline_interfaces", "baseline_basic"}
    assert results["ours_cold"]["hosts"] == results["baseline_interfaces"]["hosts"] > 0


def test_bios():
    # Its own emulators on another /16 and port per test worker: the lab's BMCs (127.100/16:443), the
    # virtual-media lab (127.101.0.x) and other workers' bench emulators are left alone.
    n = workers.index(os.environ.get(workers.WORKER_ENV))
    out = bench("bios", "--sizes", "3", "--forks", "3", "--net", f"127.{110 + n}.0.0", "--port", str(18443 + n))
    runs = out["results"]["3"]
    assert {"ours", "community", "floor"} <= set(runs), runs.keys()
    assert out["bar"]["second_run_changed_0"]["met"] and out["bar"]["ours_runs_succeeded"]


def test_jobs(lab_env, fleet, restore_fleet_after):
    out = bench("jobs", "--tenants", "2", "--jobs-per-tenant", "3", "--latency-runs", "2", "--workers", "1",
                "--api-processes", "1", "--api-threads", "4", "--client-threads", "2")
    assert out["direct_start_ms"] and out["api_start_ms"] and out["jobs"] == 6
    assert out["jobs_ran"] + out["jobs_canceled"] == 6


def test_fabric(lab_env, fleet, restore_fleet_after):
    out = bench("fabric", "--tenants", "2", "--workers", "2")
    assert [p["phase"] for p in out["phases"]] == ["cold", "no-change", "one-more-tenant"]
    assert out["phases"][1]["tasks_changed"] == 0 and out["phases"][1]["allocations_changed"] == 0
