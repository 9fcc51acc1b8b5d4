"""The CI-time report at the end of every run: test time per file, sorted, against the suite's budget.

CI has a hard 90-minute limit and `make test` stays under BUDGET_MIN on a 2-core machine (README, "The lab").
Each file's time is the sum of its tests' setup, call and teardown as the workers measured them (with parallel
workers these add up to more than the wall time, which is printed beside them); an issue that adds tests pays for
them here. Reports only: no test fails on time.
"""

import time
from collections import defaultdict

BUDGET_MIN = 45
_started = time.monotonic()
_per_file: dict[str, float] = defaultdict(float)
_tests: dict[str, set[str]] = defaultdict(set)


def pytest_runtest_logreport(report):
    """Runs in the controller for every worker's report (and in a plain run for its own)."""
    path = report.nodeid.split("::", 1)[0]
    _per_file[path] += report.duration
    _tests[path].add(report.nodeid)


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput") or not _per_file:
        return
    wall = time.monotonic() - _started
    workers = getattr(config.option, "numprocesses", None) or 1
    tr = terminalreporter
    tr.section("CI time per test file (setup + call + teardown)")
    width = max(len(path) for path in _per_file)
    for path, seconds in sorted(_per_file.items(), key=lambda item: -item[1]):
        tr.write_line(f"{seconds:8.1f} s  {len(_tests[path]):4d} tests  {path:<{width}}")
    total = sum(_per_file.values())
    tr.write_line(f"{total:8.1f} s of test time on {workers} worker(s) in {wall / 60:.1f} min wall "
                  f"(budget: {BUDGET_MIN} min for `make test`, CI's hard limit 90 min)")
