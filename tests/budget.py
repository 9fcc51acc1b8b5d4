"""The CI-time report at the end of every run: test time per file, sorted, against the suite's budget.

CI has a hard 90-minute limit and `make test` stays under BUDGET_MIN on a 2-core machine (README, "The lab").
Each file's time is the sum of its tests' setup, call and teardown as the workers measured them (with parallel
workers these add up to more than the wall time, which is printed beside them); an issue that adds tests pays for
them here. Reports only: no test fails on time.

The per-file times are also kept (.state/test-times.json; tests/test-times.json, committed, until a run has written
one) for the next parallel run to hand out its longest groups first (tests/conftest.py).
"""

import json
import resource
import time
from collections import defaultdict
from pathlib import Path

import pytest

BUDGET_MIN = 45
TESTS = Path(__file__).resolve().parent
TIMES = TESTS.parent / ".state" / "test-times.json"
DEFAULT_TIMES = TESTS / "test-times.json"
_PHASE_CPU = pytest.StashKey[float]()
_started = time.monotonic()
_per_file: dict[str, float] = defaultdict(float)
_tests: dict[str, set[str]] = defaultdict(set)
_cpu: dict[str, float] = defaultdict(float)


def file_seconds() -> dict[str, float]:
    """Test file name -> seconds, from the last full run here, else the committed figures."""
    for path in (TIMES, DEFAULT_TIMES):
        try:
            return {name: float(s) for name, s in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            continue
    return {}


def group_seconds(groups: dict[str, str]) -> dict[str, float]:
    """{test file name: its group} -> seconds per group (a file not timed yet counts as a minute: it is new)."""
    seconds = file_seconds()
    out: dict[str, float] = defaultdict(float)
    for name, group in groups.items():
        out[group] += seconds.get(name, 60.0)
    return out


def _keep(per_file: dict[str, float], session, exitstatus) -> None:
    """Only a whole run's figures (all passed, no paths, -k, -m, --deselect or --lf) are kept for the next run."""
    config = session.config
    whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS  # no paths given: the suite's testpaths
    narrowed = (config.option.keyword or config.option.markexpr or config.getoption("deselect", None)
                or config.getoption("lf", False))
    if exitstatus != pytest.ExitCode.OK or not whole or narrowed:
        return
    TIMES.parent.mkdir(exist_ok=True)
    partial = TIMES.with_suffix(".partial")
    partial.write_text(json.dumps({Path(k).name: round(v, 1) for k, v in sorted(per_file.items())}, indent=1) + "\n")
    partial.replace(TIMES)


def _cpu_seconds() -> float:
    """CPU of this process and of the children it has waited for (ansible-playbook and its forks, the daemons a
    test started and stopped); the lab's long-running services are not counted."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's CPU rides on its report (user_properties reach the controller of a parallel run too)."""
    report = yield
    start = item.stash.get(_PHASE_CPU, None)
    if start is not None:
        report.user_properties.append(("cpu_s", round(_cpu_seconds() - start, 3)))
    item.stash[_PHASE_CPU] = _cpu_seconds()
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_PHASE_CPU] = _cpu_seconds()


def pytest_runtest_logreport(report):
    """Runs in the controller for every worker's report (and in a plain run for its own)."""
    path = report.nodeid.split("::", 1)[0]
    _per_file[path] += report.duration
    _tests[path].add(report.nodeid)
    _cpu[path] += sum(v for k, v in report.user_properties if k == "cpu_s")


def pytest_sessionfinish(session, exitstatus):
    if not hasattr(session.config, "workerinput") and _per_file:
        _keep(_per_file, session, exitstatus)


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput") or not _per_file:
        return
    wall = time.monotonic() - _started
    workers = getattr(config.option, "numprocesses", None) or 1
    tr = terminalreporter
    tr.section("CI time per test file (setup + call + teardown; CPU: the tests' own processes, not the lab's)")
    width = max(len(path) for path in _per_file)
    for path, seconds in sorted(_per_file.items(), key=lambda item: -item[1]):
        tr.write_line(f"{seconds:8.1f} s  {_cpu[path]:7.1f} s CPU  {len(_tests[path]):4d} tests  {path:<{width}}")
    total = sum(_per_file.values())
    tr.write_line(f"{total:8.1f} s of test time, {sum(_cpu.values()):.0f} s CPU, on {workers} worker(s) in "
                  f"{wall / 60:.1f} min wall (budget: {BUDGET_MIN} min for `make test`, CI's hard limit 90 min)")
