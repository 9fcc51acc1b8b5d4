"""bench/jobs: the runner's API and queue overhead against running ansible-runner directly.

Both run the same trivial playbook (bench/trivial.yml: one debug task on localhost) with the same
tenant inventory source (the gpucloud_netbox file the worker writes). Reported:
  - start latency, direct: ansible_runner.run() called -> the run's playbook_on_start event;
  - start latency, API: just before POST /v1/jobs -> the job's playbook_on_start event (its own
    timestamp, read back through the API), sequential jobs with the workers idle; overhead = API - direct;
  - throughput: tenants x jobs-per-tenant POSTs as fast as a keep-alive client can send them,
    submitted tenant-major (all of the first tenant's jobs, then the next tenant's: a FIFO's worst case);
  - fairness: per tenant, the wait from its first submit to its first job's start, and the job slots
    other tenants were given while that first job sat queued, beyond one each (admission times from
    the workers' own log lines);
  - where the CPU went during the burst: the bench API, the workers and their ansible runs, Redis,
    NetBox, this client, and everything else on the machine.
Then the jobs still queued are canceled through the API: running all of them would take far longer
than the measurement needs. The last line is one JSON object.

The runner under test is isolated: its own Redis database on the lab Redis (flushed at start and
end), its own data directory, its own API (granian, as the lab runs it) on a free port and its own worker
processes, all stopped at the end. The lab's own runner (port 58080, Redis db 2) is left alone.
"""

import argparse
import contextlib
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from lab.proc import port_open  # noqa: E402
from lab.runner_service import api_command, inventory_options  # noqa: E402
from lab.settings import load  # noqa: E402
from lab.stack import read_env, up  # noqa: E402

CATALOGUE = REPO / "bench" / "catalogue.yml"
CLUSTER_STAGES = REPO / "bench" / "clusters.yml"
PLAYBOOK = "trivial"
FINISHED = {"successful", "failed", "canceled", "timeout"}
BAR_OVERHEAD_P99_MS = 100
BAR_SUBMITS_PER_S = 500


def pct(values: list[float], q: float) -> float:
    """The q-th percentile, linear between closest ranks (with 20 samples, p99 is close to the max)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(values: list[float]) -> dict:
    return {"p50": round(pct(values, 50) * 1000, 1), "p99": round(pct(values, 99) * 1000, 1)}


def iso_epoch(stamp) -> float:
    return datetime.datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else float(stamp)


class RunFailed(Exception):
    """A timed run did not succeed (see start_latencies)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the isolated runner ---------------------------------------------------------------------------
class Runner:
    """API under granian and N workers, each in its own session so it is stopped with its children."""

    def __init__(self, env: dict, port: int, workers: int, threads: int, logs: Path):
        self.env, self.port, self.workers, self.threads, self.logs = env, port, workers, threads, logs
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def _spawn(self, name: str, cmd: list[str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append((name, proc))

    def start(self, api_workers: int) -> None:
        self._spawn("api", api_command(self.port, api_workers, self.threads))
        for n in range(self.workers):
            self._spawn(f"worker-{n}", [sys.executable, "-m", "runner_api.worker", "--name", f"bench-worker-{n}",
                                        "--log-level", "INFO"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited ({proc.returncode}); see {self.logs / name}.log:\n"
                                     + self.tail(name))
            if port_open(self.port):
                try:
                    status, _ = Client(self.port).call("GET", "/healthz")
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise SystemExit(f"the bench API did not answer on port {self.port}:\n{self.tail('api')}")

    def pids(self, prefix: str) -> list[int]:
        return [proc.pid for name, proc in self.procs if name.startswith(prefix)]

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []


class Client:
    """One keep-alive HTTP/1.1 connection: http.client is cheap enough not to be the bottleneck."""

    def __init__(self, port: int, token: str | None = None):
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        headers = {"Accept": "application/json"}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()  # a dropped keep-alive connection: one retry on a fresh one
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {})


# -- where the CPU goes during the burst ----------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid -> (parent, own CPU seconds, CPU seconds of its children already reaped)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        table[int(entry)] = (int(fields[1]), (utime + stime) / TICK, (cutime + cstime) / TICK)
    return table


def _machine_busy() -> float:
    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK  # all but idle and iowait


class CpuMeter:
    """CPU seconds of named process trees, this process and the whole machine, between two snapshots."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups

    def snapshot(self) -> dict[str, float]:
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in table.items():
            children.setdefault(parent, []).append(pid)
        out = {}
        for name, roots in self.groups.items():
            total, todo = 0.0, [p for p in roots if p in table]
            while todo:
                pid = todo.pop()
                total += table[pid][1] + table[pid][2]
                todo += children.get(pid, [])
            out[name] = total
        out["bench client (this process)"] = time.process_time()
        out["machine"] = _machine_busy()
        return out

    @staticmethod
    def delta(before: dict, after: dict) -> dict[str, float]:
        spent = {k: after[k] - before[k] for k in before}
        spent["everything else (other sessions, kernel)"] = spent.pop("machine") - sum(spent.values())
        return spent


def lab_pids() -> dict[str, list[int]]:
    run_dir = load().run
    pids = {}
    for name, pidfile in (("lab redis", "redis.pid"), ("lab netbox (gunicorn)", "gunicorn.pid")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids[name] = [int((run_dir / pidfile).read_text().split()[0])]
    return pids


# -- set-up ----------------------------------------------------------------------------------------
def lab_env() -> dict:
    """The lab's services, brought up only if they are down (`up` would restart the lab's runner
    when runner_api changed, and another session may be using it)."""
    s = load()
    if not (port_open(s.redis_port) and port_open(s.netbox_port)):
        return up(s)
    return read_env(s)


def ensure_netbox_tenants(env: dict, slugs: list[str]) -> int:
    from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox

    nb = NetBox(env["NETBOX_URL"], env["NETBOX_TOKEN"])
    have = {t["slug"] for t in nb.list("tenancy/tenants", slug=slugs)}
    missing = [{"name": slug, "slug": slug} for slug in slugs if slug not in have]
    if missing:
        nb.create("tenancy/tenants", missing)
    return len(missing)


def netbox_recover(env: dict, slugs: list[str], pause: float = 3, timeout: float = 300) -> int:
    """Wait out a NetBox restore by another session, then put the bench tenants back."""
    from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBoxError

    deadline = time.monotonic() + timeout
    while True:
        time.sleep(pause)
        try:
            return ensure_netbox_tenants(env, slugs)
        except NetBoxError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"NetBox did not come back within {timeout:.0f}s: {exc}") from None
            pause = 3


def onboard(admin: Client, slugs: list[str], concurrency: int, recover) -> dict[str, str]:
    """Each tenant onboarded (the API checks NetBox has it) with one tenant-operator token."""
    tokens = {}
    for slug in slugs:
        for attempt in range(4):
            status, body = admin.call("POST", "/v1/tenants", {"slug": slug, "concurrency": concurrency})
            if status == 201:
                break
            if attempt == 3 or status not in (422, 503):  # 422/503: NetBox lost the tenant, or is restoring
                raise SystemExit(f"onboarding {slug}: {status} {body}")
            recover()
        status, body = admin.call("POST", "/v1/tokens", {"role": "tenant-operator", "tenant": slug,
                                                         "description": "bench/jobs"})
        if status != 201:
            raise SystemExit(f"token for {slug}: {status} {body}")
        tokens[slug] = body["token"]
    return tokens


# -- phases 1 and 2: start latency, direct and through the API, interleaved ---------------------------
class Direct:
    """ansible-runner called as the worker calls it (runner_api/execution.py JobRun._ansible), with the
    tenant inventory file the worker writes, minus the API and the queue around it."""

    def __init__(self, settings, tenant: str, work: Path):
        from runner_api.execution import write_inventory

        self.settings, self.work = settings, work
        self.inventory = write_inventory(settings, tenant)  # the very file the worker writes for this tenant
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

    def run(self, n: str) -> float:
        import ansible_runner

        from runner_api.execution import write_extravars

        private = self.work / f"direct-{n}"
        private.mkdir(mode=0o700)
        extravars = private / "tenant-vars.yml"
        write_extravars(extravars, {})
        seen: dict = {}

        def on_event(event: dict) -> bool:
            if event.get("event") == "playbook_on_start" and "start" not in seen:
                seen["start"] = iso_epoch(event["created"])
            return True

        before = time.time()
        result = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(REPO / "bench"), playbook="trivial.yml",
            inventory=str(self.inventory), cmdline=f"-e @{extravars}",
            envvars={"ANSIBLE_CONFIG": str(self.settings.ansible_cfg), "ANSIBLE_FORCE_COLOR": "0"},
            ident="run", quiet=True, timeout=600, event_handler=on_event,
            cancel_callback=lambda: False,  # else ansible-runner takes over SIGINT/SIGTERM for good
            rotate_artifacts=1,
        )
        if result.status != "successful" or "start" not in seen:
            stdout = private / "artifacts" / "run" / "stdout"
            raise RunFailed(f"direct run {n}: {result.status}\n"
                             + (stdout.read_text(errors="replace")[-2000:] if stdout.exists() else ""))
        return seen["start"] - before


def wait_end(r: redis.Redis, job_id: str, timeout: float = 600) -> dict:
    """Blocks on the job's event stream (no polling load on the two cores) until job_end."""
    key, after = f"gpucloud:job:{job_id}:events", "0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, entries in r.xread({key: after}, block=1000) or []:
            for event_id, fields in entries:
                after = event_id
                event = json.loads(fields["data"])
                if event.get("event") == "job_end":
                    return event
    raise SystemExit(f"job {job_id} did not finish within {timeout:.0f}s")


def api_run(client: Client, r: redis.Redis) -> tuple[float, dict[str, float]]:
    """One job through the API with the workers idle; its start read back from its own events."""
    before = time.time()
    status, job = client.call("POST", "/v1/jobs", {"playbook": PLAYBOOK})
    posted = time.time()
    if status != 201:
        raise RunFailed(f"POST /v1/jobs: {status} {job}")
    end = wait_end(r, job["id"])
    if end.get("status") != "successful":
        raise RunFailed(f"job {job['id']} {end.get('status')}: {end.get('reason')}")
    status, page = client.call("GET", f"/v1/jobs/{job['id']}/events?limit=1000")
    events = {e["event"]: e for e in reversed(page["items"])}  # the first of each kind wins
    if status != 200 or "playbook_on_start" not in events:
        raise RunFailed(f"job {job['id']} has no playbook_on_start event: {status} {page}")
    started = iso_epoch(events["playbook_on_start"]["created"])
    horse = float(events["job_start"]["created"])
    return started - before, {"post": posted - before, "queue_to_job_start": horse - posted,
                              "job_start_to_playbook_start": started - horse}


def start_latencies(direct: Direct, client: Client, r: redis.Redis, runs: int, recover, retries: int = 3):
    """Alternating direct and API runs, so drifting load on the shared cores hits both alike.
    The first pair warms caches (inventory, API's tenant nodes, page cache) and is not counted.

    Both read the lab NetBox, which other sessions' tests restore from a dump (dropping the bench
    tenants, answering 500 meanwhile): a pair that fails is run again after `recover`, and counted.
    """
    direct_s, api_s, parts = [], [], {}
    failed = 0
    for n in range(runs + 1):
        for attempt in range(retries + 1):
            try:
                d = direct.run(f"{n}-{attempt}")
                a, split = api_run(client, r)
                break
            except RunFailed as exc:
                if attempt == retries:
                    raise SystemExit(f"start latency pair {n} failed {retries + 1} times; last: {exc}") from None
                failed += 1
                print(f"  pair {n} failed ({str(exc).strip().splitlines()[0][:160]}); NetBox is shared with "
                      "other sessions: recreating the bench tenants there and running the pair again", flush=True)
                recover()
        if n:
            direct_s.append(d)
            api_s.append(a)
            for name, value in split.items():
                parts.setdefault(name, []).append(value)
    return direct_s, api_s, parts, failed


# -- phase 3: the burst, fairness, cancel ----------------------------------------------------------
def burst(port: int, tokens: dict[str, str], per_tenant: int, threads: int,
          path: str = "/v1/jobs") -> tuple[list[dict], float]:
    """Tenant-major order; each thread takes the next submission from the shared list.

    With path="/healthz" the same client sends as many unauthenticated GETs instead: the ceiling of
    this client with this HTTP server on these cores, apart from anything the runner does per request.
    """
    order = [tenant for tenant in tokens for _ in range(per_tenant)]
    results: list[dict | None] = [None] * len(order)
    cursor = iter(range(len(order)))
    lock = threading.Lock()
    clients = [Client(port) for _ in range(threads)]
    for c in clients:  # connect before the clock starts
        c.conn.connect()
    gate = threading.Barrier(threads + 1)

    def send(client: Client) -> None:
        gate.wait()
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            tenant = order[index]
            before = time.time()
            if path == "/healthz":
                status, body = client.call("GET", path)
            else:
                status, body = client.call("POST", path, {"playbook": PLAYBOOK}, token=tokens[tenant])
            results[index] = {"tenant": tenant, "before": before, "after": time.time(), "status": status,
                              "id": body.get("id"), "error": None if status == 201 else body}

    pool = [threading.Thread(target=send, args=(c,), daemon=True) for c in clients]
    for t in pool:
        t.start()
    gate.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    for c in clients:
        c.conn.close()
    return [r for r in results if r], wall


def read_jobs(r: redis.Redis, ids: list[str]) -> list[dict]:
    pipe = r.pipeline()
    for job_id in ids:
        pipe.hmget(f"gpucloud:job:{job_id}", "tenant", "status", "started_at", "finished_at")
    return [{"id": i, "tenant": t, "status": s, "started_at": float(st) if st else None,
             "finished_at": float(f) if f else None}
            for i, (t, s, st, f) in zip(ids, pipe.execute(), strict=True)]


def wait_first_jobs(r: redis.Redis, ids: list[str], tenants: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = read_jobs(r, ids)
        started = {j["tenant"] for j in jobs if j["started_at"]}
        if started >= set(tenants):
            return jobs
        if time.monotonic() > deadline:
            raise SystemExit(f"tenants with no job started after {timeout:.0f}s: {sorted(set(tenants) - started)}")
        time.sleep(0.5)


ADMITTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO runner_api\.worker: "
                      r"worker \S+: tenant (\S+) job (\S+)$")


def admissions(logs: list[Path]) -> dict[str, float]:
    """job id -> when a worker was handed it by the fair dequeue (runner_api/worker.py logs each one).

    The job's own started_at is taken later, in the forked work horse, tens of ms after admission;
    ordering by it could show a job admitted just before a tenant's first submit as started after it.
    """
    admitted = {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            m = ADMITTED.match(line)
            if m:
                admitted[m[4]] = time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S")) + int(m[2]) / 1000
    return admitted


def fairness(submits: list[dict], jobs: list[dict], admitted: dict[str, float]) -> dict:
    """Per tenant: the wait from its first submit to its first job's start, and the job slots other
    tenants were given while its first job was queued (its POST answered, not yet admitted), beyond
    one each."""
    first_submit: dict[str, dict] = {}
    for s in submits:
        if s["tenant"] not in first_submit or s["before"] < first_submit[s["tenant"]]["before"]:
            first_submit[s["tenant"]] = s
    started = [j for j in jobs if j["started_at"]]
    first_start: dict[str, float] = {}
    for j in sorted(started, key=lambda j: j["started_at"]):
        first_start.setdefault(j["tenant"], j["started_at"])
    # admission time, or (a log line missing) the start in the horse
    given = sorted((admitted.get(j["id"], j["started_at"]), j["tenant"]) for j in started)
    per_tenant = {}
    for tenant, submit in first_submit.items():
        mine = next(at for at, t in given if t == tenant)
        others = [t for at, t in given if t != tenant and submit["after"] <= at < mine]
        per_tenant[tenant] = {"wait_s": first_start[tenant] - submit["before"],
                              "extra_slots": len(others) - len(set(others))}
    worst_wait = max(per_tenant, key=lambda t: per_tenant[t]["wait_s"])
    worst_extra = max(per_tenant, key=lambda t: per_tenant[t]["extra_slots"])
    return {"per_tenant": per_tenant, "worst_wait_tenant": worst_wait, "worst_extra_tenant": worst_extra,
            "worst_first_job_wait_s": round(per_tenant[worst_wait]["wait_s"], 2),
            "worst_extra_slots": per_tenant[worst_extra]["extra_slots"],
            "admissions_logged": sum(1 for j in started if j["id"] in admitted), "started": len(started)}


def cancel_queued(port: int, tokens: dict[str, str], jobs: list[dict], threads: int) -> dict[int, int]:
    todo = [j for j in jobs if j["status"] == "queued"]
    outcomes: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(todo)

    def work() -> None:
        client = Client(port)
        while True:
            with lock:
                job = next(cursor, None)
            if job is None:
                return
            status, _ = client.call("POST", f"/v1/jobs/{job['id']}/cancel", {}, token=tokens[job["tenant"]])
            with lock:
                outcomes[status] = outcomes.get(status, 0) + 1

    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return outcomes


def wait_all_finished(r: redis.Redis, ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = read_jobs(r, ids)
        if all(j["status"] in FINISHED for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            left = [j["id"] for j in jobs if j["status"] not in FINISHED]
            raise SystemExit(f"{len(left)} jobs still not finished after {timeout:.0f}s")
        time.sleep(0.5)


# -- main --------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--jobs-per-tenant", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="runner worker processes (default 2)")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--redis-db", type=int, default=9, help="the bench runner's Redis db (flushed!)")
    parser.add_argument("--port", type=int, default=0, help="the bench API's port (default: a free one)")
    parser.add_argument("--api-processes", type=int, default=2, help="API worker processes")
    parser.add_argument("--api-threads", type=int, default=16, help="request threads per API process")
    parser.add_argument("--client-threads", type=int, default=16, help="keep-alive connections of the burst")
    parser.add_argument("--concurrency", type=int, default=2, help="each bench tenant's concurrency limit")
    args = parser.parse_args()
    if args.redis_db == 2:
        raise SystemExit("--redis-db 2 is the lab runner's database; pick another")
    clock = time.monotonic()
    load_at_start = os.getloadavg()[0]
    env = lab_env()
    base_url = env["GPUCLOUD_REDIS_URL"].rsplit("/", 1)[0]
    redis_url = f"{base_url}/{args.redis_db}"
    port = args.port or free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    data_dir = work / "runner"
    data_dir.mkdir(mode=0o700)
    runner_env = {**os.environ, **env, "GPUCLOUD_REDIS_URL": redis_url, "GPUCLOUD_DATA_DIR": str(data_dir),
                  "GPUCLOUD_CATALOGUE": str(CATALOGUE), "GPUCLOUD_CLUSTER_STAGES": str(CLUSTER_STAGES),
                  "GPUCLOUD_API_URL": f"http://127.0.0.1:{port}",
                  "GPUCLOUD_INVENTORY_OPTIONS": str(inventory_options(load())), "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: v for k, v in runner_env.items() if k.startswith(("GPUCLOUD_", "NETBOX_"))})
    from runner_api.principal import Role
    from runner_api.settings import Settings
    from runner_api.store import Store
    from runner_api.tokens import TokenStore

    settings = Settings.from_env()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    runner = Runner(runner_env, port, args.workers, args.api_threads, work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops what we started
    slugs = [f"bench-{n:02d}" for n in range(args.tenants)]
    try:
        created = netbox_recover(env, slugs, pause=0)
        print(f"NetBox tenants {slugs[0]}..{slugs[-1]}: {created} created, {len(slugs) - created} existed",
              flush=True)
        runner.start(args.api_processes)
        print(f"bench runner: API http://127.0.0.1:{port} (granian {args.api_processes}x{args.api_threads} threads), "
              f"{args.workers} workers, Redis db {args.redis_db}, data {data_dir}", flush=True)
        admin_token, _ = TokenStore(Store(redis_url).redis).issue(Role.PLATFORM_ADMIN, None, "bench", "bench")
        tokens = onboard(Client(port, admin_token), slugs, args.concurrency, lambda: netbox_recover(env, slugs))
        print(f"onboarded {len(tokens)} tenants (concurrency {args.concurrency}), one tenant-operator token each",
              flush=True)

        print(f"start latency: {args.latency_runs} direct ansible_runner.run() and {args.latency_runs} sequential "
              f"POST /v1/jobs (workers idle), alternating, same playbook and inventory ...", flush=True)
        direct, api, parts, retried = start_latencies(Direct(settings, slugs[0], work), Client(port, tokens[slugs[0]]),
                                                      r, args.latency_runs, lambda: netbox_recover(env, slugs))
        overhead = {"p50": round((pct(api, 50) - pct(direct, 50)) * 1000, 1),
                    "p99": round((pct(api, 99) - pct(direct, 99)) * 1000, 1)}
        paired = ms([a - d for a, d in zip(api, direct, strict=True)])  # each API run less the direct run before it

        total = args.tenants * args.jobs_per_tenant
        netbox_recover(env, slugs, pause=0)  # in case another session restored NetBox meanwhile
        _, ceiling_wall = burst(port, tokens, args.jobs_per_tenant, args.client_threads, path="/healthz")
        ceiling = total / ceiling_wall
        print(f"burst: {total} POSTs ({args.tenants} tenants x {args.jobs_per_tenant}, tenant-major) over "
              f"{args.client_threads} keep-alive connections ...", flush=True)
        meter = CpuMeter({"bench API": runner.pids("api"),
                          "bench workers + ansible": runner.pids("worker-"), **lab_pids()})
        cpu_before = meter.snapshot()
        submits, wall = burst(port, tokens, args.jobs_per_tenant, args.client_threads)
        cpu = CpuMeter.delta(cpu_before, meter.snapshot())
        refused = [s for s in submits if s["status"] != 201]
        if refused:
            raise SystemExit(f"{len(refused)} of {total} POSTs refused, e.g. {refused[0]['status']} "
                             f"{refused[0]['error']} (a 503 naming NetBox: another session restored the lab NetBox "
                             "during the burst; run again)")
        submits_per_s = total / wall
        ids = [s["id"] for s in submits]
        jobs = wait_first_jobs(r, ids, slugs, timeout=1800)
        fair = fairness(submits, jobs, admissions([work / f"worker-{n}.log" for n in range(args.workers)]))
        ran = [j for j in read_jobs(r, ids) if j["started_at"]]
        durations = [j["finished_at"] - j["started_at"] for j in ran if j["finished_at"]]
        before_cancel = time.monotonic()
        canceled = cancel_queued(port, tokens, read_jobs(r, ids), args.client_threads)
        final = wait_all_finished(r, ids, timeout=900)
        outcome: dict[str, int] = {}
        for j in final:
            outcome[j["status"]] = outcome.get(j["status"], 0) + 1
        per_job = statistics.median(durations) if durations else float("nan")
        full_min = total * per_job / args.workers / 60

        d, a = ms(direct), ms(api)
        submit = ms([s["after"] - s["before"] for s in submits])
        print()
        print(f"start latency (call or POST -> playbook_on_start), {args.latency_runs} runs each:")
        print(f"  {'':28} {'p50 ms':>9} {'p99 ms':>9}")
        print(f"  {'ansible_runner.run direct':28} {d['p50']:9.1f} {d['p99']:9.1f}")
        print(f"  {'runner API + queue':28} {a['p50']:9.1f} {a['p99']:9.1f}")
        print(f"  {'overhead (api - direct)':28} {overhead['p50']:9.1f} {overhead['p99']:9.1f}   "
              f"ratio p50 {pct(api, 50) / pct(direct, 50):.2f}x")
        print(f"  {'per pair (api_i - direct_i)':28} {paired['p50']:9.1f} {paired['p99']:9.1f}   "
              f"(with {len(api)} runs p99 is about the slowest; other load on the cores moves it)")
        if retried:
            print(f"    ({retried} pairs ran again after a NetBox failure: see above)")
        for name, values in parts.items():
            print(f"    api part {name:22} p50 {pct(values, 50) * 1000:7.1f} ms  p99 {pct(values, 99) * 1000:7.1f} ms")
        print(f"submits: {total} POSTs in {wall:.2f}s = {submits_per_s:.0f}/s; POST latency p50 {submit['p50']} ms "
              f"p99 {submit['p99']} ms ({args.workers} workers running jobs meanwhile); same client, "
              f"GET /healthz: {ceiling:.0f}/s")
        print(f"  CPU seconds during the burst ({wall:.2f}s wall, {os.cpu_count()} cores = "
              f"{wall * (os.cpu_count() or 1):.1f} CPU-s available): "
              + ", ".join(f"{name} {spent:.2f}" for name, spent in cpu.items())
              + f"; bench API {cpu['bench API'] / total * 1000:.2f} CPU-ms per POST")
        print(f"fairness: worst first-job wait {fair['worst_first_job_wait_s']}s ({fair['worst_wait_tenant']}); "
              f"worst extra slots taken by others {fair['worst_extra_slots']} ({fair['worst_extra_tenant']}); "
              f"{len(ran)} jobs ran, median {per_job:.2f}s each; admission times from worker logs for "
              f"{fair['admissions_logged']} of {fair['started']}")
        print(f"then canceled the queued jobs through the API ({canceled}); all {total} settled "
              f"in {time.monotonic() - before_cancel:.1f}s: {outcome}. Running every job would have taken "
              f"~{full_min:.0f} min on {args.workers} workers")
        bars = {"overhead_p99_le_100ms": overhead["p99"] <= BAR_OVERHEAD_P99_MS,
                "submits_ge_500_per_s": submits_per_s >= BAR_SUBMITS_PER_S}
        print(f"bar: overhead p99 <= {BAR_OVERHEAD_P99_MS} ms above direct: "
              f"{'met' if bars['overhead_p99_le_100ms'] else 'MISSED'} ({overhead['p99']} ms); "
              f">= {BAR_SUBMITS_PER_S} submits/s: {'met' if bars['submits_ge_500_per_s'] else 'MISSED'} "
              f"({submits_per_s:.0f}/s); on {os.cpu_count()} cores (1-min load {load_at_start:.2f} at start, other "
              f"work on the machine competes with the runner), run took {time.monotonic() - clock:.0f}s")
        print(json.dumps({
            "benchmark": "jobs", "baseline": "ansible_runner.run direct",
            "direct_start_ms": d, "api_start_ms": a, "overhead_ms": overhead, "overhead_paired_ms": paired,
            "api_parts_ms": {k: ms(v) for k, v in parts.items()},
            "submits_per_s": round(submits_per_s, 1), "submit_ms": submit, "healthz_per_s": round(ceiling, 1),
            "burst_cpu_s": {name: round(spent, 2) for name, spent in cpu.items()},
            "fairness": {"worst_first_job_wait_s": fair["worst_first_job_wait_s"],
                         "worst_extra_slots": fair["worst_extra_slots"]},
            "tenants": args.tenants, "jobs": total, "workers": args.workers, "jobs_ran": len(ran),
            "jobs_canceled": outcome.get("canceled", 0), "latency_pairs_retried": retried, "cpus": os.cpu_count(),
            "load_1m_at_start": round(load_at_start, 2), "bars": bars,
        }))
    finally:
        runner.stop()
        with contextlib.suppress(redis.RedisError):
            r.flushdb()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
