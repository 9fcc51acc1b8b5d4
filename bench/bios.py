"""bench/bios: gpucloud.infra.bios_settings against community.general's Redfish modules and an asyncio floor.

For each size N (--sizes, default 50,500) the bench starts its OWN N sushy-tools BMC emulators
(lab/bmc_emulator.py with a temporary state directory, so its own lab CA, on --port, default 8443,
on 127.101.x.y addresses: the lab's emulators on 127.100.x.y:443 are left alone) and, for each
contender, restarts them (the emulators keep their BIOS in memory: a restart gives every contender
the same default BIOS) and measures two runs with the same attributes {ProcTurboMode: Enabled,
QuietBoot: false}:
  - first run: QuietBoot differs from its default on every BMC, so every BMC is changed;
  - no-change run: the same again, nothing to change.
Contenders:
  - ours: `ansible-playbook bench/bios_ours.yml` (gpucloud.infra.bios_settings, reboot: when_required),
    the project's .venv, --forks forks;
  - community.general: `ansible-playbook bench/bios_community.yml` (redfish_config SetBiosAttributes,
    redfish_command PowerForceRestart when it changed, redfish_info GetBiosAttributes), ansible 14.5.0
    from bench/inventory.py's baseline venv, same forks, TLS verified against the same CA (ca_path);
  - floor: this file's asyncio worker (aiohttp, in a bench-only venv in the lab cache), at most --forks
    BMCs at a time, per BMC the requests our plugin needs at least: GET Systems, system, Bios,
    Registries, the registry file, the registry; PATCH Bios/Settings when something differs; GET Bios
    to verify;
  - ansible no-op (diagnostic, not a contender): the same inventory and forks, one ansible.builtin.debug
    task per host: what Ansible's per-host task machinery costs with no Redfish at all.
Reported per run: wall time, client CPU seconds (getrusage(RUSAGE_CHILDREN) deltas: ansible-playbook
and its forks, or the floor's worker process) and the emulators' CPU seconds (/proc of the launcher's
processes), and for ansible runs the PLAY RECAP sums. The bar: ours >= 10x faster than community.general
at 500 BMCs, within 2x of the floor, our second run changed=0. The last line is one JSON object.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS_PLAYBOOK = REPO / "bench" / "bios_ours.yml"
BASELINE_PLAYBOOK = REPO / "bench" / "bios_community.yml"
FLOOR_PACKAGES = ["aiohttp==3.14.5", "aiohappyeyeballs==2.7.1", "aiosignal==1.4.0", "attrs==26.1.0",
                  "frozenlist==1.8.0", "idna==3.20", "multidict==7.2.1", "propcache==0.5.4", "yarl==1.25.1"]
DESIRED = {"ProcTurboMode": "Enabled", "QuietBoot": False}
NOOP_PLAYBOOK = """---
- name: Ansible per-host overhead (bench diagnostic)
  hosts: all
  gather_facts: false
  tasks:
    - name: No-op
      ansible.builtin.debug:
        msg: "{{ bmc_address }}"
"""
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)"
                   r"\s+rescued=(\d+)\s+ignored=(\d+)", re.M)
BAR = {"speedup_vs_community_min": 10, "at_size": 500, "ours_over_floor_max": 2.0, "second_run_changed": 0}
# Requests per BMC, from the code (plugins/module_utils/bios_apply.py, redfish.py) and the worker below.
OURS_REQUESTS = {"first": 7, "no_change": 4}  # registry cached on the controller after the first BMC
FLOOR_REQUESTS = {"first": 8, "no_change": 6}


# -- the floor: runs in the bench-only venv (aiohttp), imports nothing from the lab ------------------

def _matches(current, wanted) -> bool:
    """The emulator stores every value as a string (false -> "False"); compare the way a BMC means it."""
    if isinstance(wanted, bool):
        return str(current).lower() == str(wanted).lower()
    return str(current) == str(wanted)


async def _floor_one(session, sem, base: str, desired: dict) -> dict:
    async with sem:
        async def get(path: str) -> dict:
            async with session.get(base + path) as resp:
                resp.raise_for_status()
                return await resp.json(content_type=None)

        system_uri = (await get("/redfish/v1/Systems"))["Members"][0]["@odata.id"]
        system = await get(system_uri)
        bios_uri = system["Bios"]["@odata.id"]
        bios = await get(bios_uri)
        registries = await get("/redfish/v1/Registries")
        files = [m["@odata.id"] for m in registries.get("Members", []) if "bios" in m["@odata.id"].lower()]
        registry_file = await get(files[0])
        registry = await get(registry_file["Location"][0]["Uri"])
        known = {e["AttributeName"] for e in registry.get("RegistryEntries", {}).get("Attributes", [])}
        current = bios.get("Attributes") or {}
        changes = {k: v for k, v in desired.items() if not _matches(current.get(k), v)}
        verified = True
        if changes:
            settings = ((bios.get("@Redfish.Settings") or {}).get("SettingsObject") or {}).get("@odata.id", bios_uri)
            async with session.patch(base + settings, json={"Attributes": changes}) as resp:
                resp.raise_for_status()
            after = (await get(bios_uri)).get("Attributes") or {}
            verified = all(_matches(after.get(k), v) for k, v in desired.items())
        return {"changed": bool(changes), "verified": verified, "unknown": sorted(set(desired) - known)}


async def _floor(targets: list[str], username: str, password: str, ca: str, concurrency: int, desired: dict) -> dict:
    import ssl

    import aiohttp

    ctx = ssl.create_default_context(cafile=ca)
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(ssl=ctx, limit=concurrency, force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, auth=aiohttp.BasicAuth(username, password),
                                     timeout=timeout, headers={"OData-Version": "4.0"}) as session:
        results = await asyncio.gather(*(_floor_one(session, sem, t, desired) for t in targets),
                                       return_exceptions=True)
    failed = [f"{t}: {type(r).__name__}: {r}" for t, r in zip(targets, results, strict=True)
              if isinstance(r, BaseException)]
    ok = [r for r in results if not isinstance(r, BaseException)]
    return {"hosts": len(targets), "changed": sum(r["changed"] for r in ok), "failed": len(failed),
            "unverified": sum(not r["verified"] for r in ok), "errors": failed[:5]}


def floor_worker() -> None:
    """`python bench/bios.py --floor-worker` with a JSON job on stdin; prints one JSON result."""
    job = json.load(sys.stdin)
    started = time.perf_counter()
    out = asyncio.run(_floor(job["targets"], job["username"], job["password"], job["ca"], job["concurrency"],
                             job["desired"]))
    out["inner_wall_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(out))


# -- the bench ----------------------------------------------------------------------------------

def floor_venv(s) -> Path:
    from lab.proc import run

    venv = s.cache / "venvs" / "bench-bios-floor"
    marker = venv / ".complete"
    wanted = "\n".join(FLOOR_PACKAGES)
    if not (marker.exists() and marker.read_text() == wanted):
        print(f"installing the floor's HTTP client ({FLOOR_PACKAGES[0]}) into {venv}", flush=True)
        run([sys.executable, "-m", "venv", "--clear", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *FLOOR_PACKAGES])
        marker.write_text(wanted)
    return venv


def bench_bmcs(n: int, net: str, cred: dict) -> list[dict]:
    a, b = (int(x) for x in net.split(".")[:2])
    return [{"name": f"bmc-{i:03d}", "address": f"{a}.{b}.{i // 250}.{i % 250 + 1}", **cred} for i in range(n)]


def write_inventory(path: Path, bmcs: list[dict], port: int, ca: Path) -> None:
    hosts = {b["name"]: {"bmc_address": b["address"], "bmc_port": port} for b in bmcs}
    inventory = {"all": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "bmc_username": bmcs[0]["username"],
        "bmc_password": "{{ lookup('ansible.builtin.env', 'GPUCLOUD_LAB_BMC_PASSWORD') }}",
        "bmc_ca": str(ca)}}}
    path.write_text(json.dumps(inventory, indent=1))  # JSON is YAML


def emulator_cpu(s) -> float:
    """CPU seconds (user + system) of the bench emulators' launcher and its per-BMC children so far."""
    from lab import bmc_emulator
    from lab.proc import read_pid

    pids = bmc_emulator.processes(s)
    launcher = read_pid(bmc_emulator._pidfile(s))
    total = 0
    for pid in pids + ([launcher] if launcher else []):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def recap(text: str) -> dict:
    rows = RECAP.findall(text)
    keys = ("ok", "changed", "unreachable", "failed", "skipped")
    sums = {k: sum(int(r[i + 1]) for r in rows) for i, k in enumerate(keys)}
    sums["hosts"] = len(rows)
    sums["hosts_changed"] = sum(int(r[2]) > 0 for r in rows)
    return sums


class Bench:
    def __init__(self, args, s, work: Path, port: int):
        self.args, self.s, self.work, self.port = args, s, work, port
        self.current: subprocess.Popen | None = None

    def timed(self, cmd: list[str], env: dict, log: Path, stdin: str | None = None) -> dict:
        cpu0, emu0, t0 = children_cpu(), emulator_cpu(self.s), time.perf_counter()
        with log.open("w") as out:
            self.current = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                            text=True)
            if stdin is not None:
                self.current.stdin.write(stdin)
                self.current.stdin.close()
            code = self.current.wait()
        wall, cpu, emu = time.perf_counter() - t0, children_cpu() - cpu0, emulator_cpu(self.s) - emu0
        self.current = None
        return {"rc": code, "wall_s": round(wall, 2), "client_cpu_s": round(cpu, 2), "bmc_cpu_s": round(emu, 2)}

    def ansible(self, bin_dir: Path, playbook: Path, inventory: Path, label: str) -> dict:
        env = {**os.environ, "ANSIBLE_CACHE_PLUGIN": "memory", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0",
               "REQUESTS_CA_BUNDLE": str(self.ca), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        log = self.work / f"{label}.log"
        out = self.timed([str(bin_dir / "ansible-playbook"), "-i", str(inventory), "-f", str(self.args.forks),
                          str(playbook)], env, log)
        text = log.read_text(errors="replace")
        out["recap"] = recap(text)
        if out["rc"] != 0 or out["recap"]["failed"] or out["recap"]["unreachable"]:
            fatal = [line for line in text.splitlines() if line.startswith(("fatal:", "ERROR", "[ERROR"))][:3]
            out["errors"] = [line[:300] for line in fatal]
            print(f"    {label}: rc={out['rc']} (log {log}): " + " | ".join(out["errors"]), flush=True)
        return out

    def floor(self, bmcs: list[dict], python: Path, label: str) -> dict:
        job = {"targets": [f"https://{b['address']}:{self.port}" for b in bmcs], "username": bmcs[0]["username"],
               "password": bmcs[0]["password"], "ca": str(self.ca), "concurrency": self.args.forks,
               "desired": DESIRED}
        log = self.work / f"{label}.log"
        out = self.timed([str(python), str(Path(__file__).resolve()), "--floor-worker"],
                         {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, log, stdin=json.dumps(job))
        lines = log.read_text(errors="replace").strip().splitlines()
        try:
            out["result"] = json.loads(lines[-1])
        except (IndexError, ValueError):
            out["result"] = {"failed": len(bmcs), "errors": lines[-5:]}
        if out["result"].get("failed"):
            print(f"    {label}: {out['result']['failed']} failed: {out['result'].get('errors')}", flush=True)
        return out

    def restart_emulators(self, bmcs: list[dict]) -> float:
        from lab import bmc_emulator

        t0 = time.perf_counter()
        bmc_emulator.stop(self.s)
        bmc_emulator.ensure_running(self.s, bmcs)
        return time.perf_counter() - t0

    @property
    def ca(self) -> Path:
        from lab import bmc_emulator

        return bmc_emulator.ca_file(self.s)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def run_size(bench: Bench, n: int, contenders: list[str], ours_bin: Path, base_bin: Path | None,
             floor_python: Path) -> dict:
    from lab import bmc_emulator

    bmcs = bench_bmcs(n, bench.args.net, bmc_emulator.credentials(bench.s))
    inventory = bench.work / f"inventory-{n}.yml"
    write_inventory(inventory, bmcs, bench.port, bench.ca)
    noop = bench.work / "noop.yml"
    noop.write_text(NOOP_PLAYBOOK)
    results: dict[str, dict] = {}
    for name in contenders:
        took = bench.restart_emulators(bmcs)
        print(f"  [{n}] {name}: {n} emulators (re)started in {took:.1f}s (default BIOS); running ...", flush=True)
        runs = {}
        for run in ("first", "no_change"):
            label = f"{name}-{n}-{run}"
            if name == "ours":
                runs[run] = bench.ansible(ours_bin, OURS_PLAYBOOK, inventory, label)
            elif name == "community":
                runs[run] = bench.ansible(base_bin, BASELINE_PLAYBOOK, inventory, label)
            elif name == "floor":
                runs[run] = bench.floor(bmcs, floor_python, label)
            else:
                runs[run] = bench.ansible(ours_bin, noop, inventory, label)
            r = runs[run]
            detail = r.get("recap") or r.get("result") or {}
            print(f"    {run:9} wall {r['wall_s']:7.2f}s  client CPU {r['client_cpu_s']:7.2f}s  BMC CPU "
                  f"{r['bmc_cpu_s']:7.2f}s  rc={r['rc']}  changed={detail.get('changed')} "
                  f"failed={detail.get('failed')}", flush=True)
            if name == "ansible_noop":
                break  # one run says it: nothing changes
        results[name] = runs
    return results


def table(n: int, res: dict) -> list[str]:
    names = {"ours": "ours (bios_settings)", "community": "community.general", "floor": "asyncio floor",
             "ansible_noop": "ansible no-op (diag.)"}
    lines = [f"{n} BMCs:", f"  {'contender':24} {'run':10} {'wall s':>8} {'client CPU s':>13} {'BMC CPU s':>10} "
             f"{'changed':>8} {'failed':>7}"]
    for name, runs in res.items():
        for run, r in runs.items():
            d = r.get("recap") or r.get("result") or {}
            changed = d.get("hosts_changed", d.get("changed"))
            lines.append(f"  {names[name]:24} {run:10} {r['wall_s']:8.2f} {r['client_cpu_s']:13.2f} "
                         f"{r['bmc_cpu_s']:10.2f} {changed!s:>8} {d.get('failed')!s:>7}")
    for run in ("first", "no_change"):
        ours = res.get("ours", {}).get(run)
        base = res.get("community", {}).get(run)
        floor = res.get("floor", {}).get(run)
        parts = []
        if ours and base:
            parts.append(f"community/ours wall {ratio(base['wall_s'], ours['wall_s'])}x, CPU "
                         f"{ratio(base['client_cpu_s'], ours['client_cpu_s'])}x")
        if ours and floor:
            parts.append(f"ours/floor wall {ratio(ours['wall_s'], floor['wall_s'])}x, CPU "
                         f"{ratio(ours['client_cpu_s'], floor['client_cpu_s'])}x")
        if parts:
            lines.append(f"  {run:10} " + "; ".join(parts))
    return lines


def summarize(results: dict) -> dict:
    ratios, verdict = {}, {}
    for n, res in results.items():
        entry = {}
        for run in ("first", "no_change"):
            ours = res.get("ours", {}).get(run)
            base = res.get("community", {}).get(run)
            floor = res.get("floor", {}).get(run)
            entry[run] = {
                "community_over_ours_wall": ratio(base and base["wall_s"], ours and ours["wall_s"]),
                "community_over_ours_cpu": ratio(base and base["client_cpu_s"], ours and ours["client_cpu_s"]),
                "ours_over_floor_wall": ratio(ours and ours["wall_s"], floor and floor["wall_s"]),
                "ours_over_floor_cpu": ratio(ours and ours["client_cpu_s"], floor and floor["client_cpu_s"]),
            }
        ratios[n] = entry
    big = str(BAR["at_size"])
    at = ratios.get(big) or (ratios[max(ratios, key=int)] if ratios else {})
    at_size = big if big in ratios else (max(ratios, key=int) if ratios else None)
    speedups = [at.get(r, {}).get("community_over_ours_wall") for r in ("first", "no_change")]
    floors = [e[r]["ours_over_floor_wall"] for e in ratios.values() for r in ("first", "no_change")]
    second = [res["ours"]["no_change"]["recap"]["changed"] for res in results.values() if "ours" in res]
    ours_ok = all(res["ours"][r]["rc"] == 0 and res["ours"][r]["recap"]["failed"] == 0
                  for res in results.values() if "ours" in res for r in ("first", "no_change"))
    verdict["speedup_vs_community"] = {
        "at_size": at_size, "measured": speedups,
        "met": None if None in speedups else all(x >= BAR["speedup_vs_community_min"] for x in speedups)}
    verdict["within_2x_of_floor"] = {"measured": floors,
                                     "met": None if None in floors or not floors
                                     else all(x <= BAR["ours_over_floor_max"] for x in floors)}
    verdict["second_run_changed_0"] = {"measured": second, "met": bool(second) and all(c == 0 for c in second)}
    verdict["ours_runs_succeeded"] = ours_ok
    return {"ratios": ratios, "bar": verdict}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,500")
    parser.add_argument("--baseline-sizes", default=None,
                        help="sizes at which community.general runs (default: all of --sizes; it is slow at 500)")
    parser.add_argument("--contenders", default="ours,community,floor,ansible_noop")
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--port", type=int, default=8443, help="the bench emulators' port (the lab's use 443)")
    parser.add_argument("--net", default="127.101.0.0", help="the bench emulators' /16 (the lab's is 127.100.0.0)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, inventories)")
    parser.add_argument("--floor-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        floor_worker()
        return

    sys.path.insert(0, str(REPO))
    from bench.inventory import baseline_venv
    from lab import bmc_emulator
    from lab.settings import load

    sizes = [int(x) for x in args.sizes.split(",") if x]
    base_sizes = sizes if args.baseline_sizes is None else [int(x) for x in args.baseline_sizes.split(",") if x]
    contenders = [c for c in args.contenders.split(",") if c]
    os.environ[bmc_emulator.PORT_ENV] = str(args.port)  # read by the launcher's configuration
    work = Path(tempfile.mkdtemp(prefix="bench-bios-"))
    s = dataclasses.replace(load(), state=work / "state")
    bench = Bench(args, s, work, args.port)

    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    results: dict[str, dict] = {}
    try:
        ours_bin = Path(sys.executable).parent
        base_bin = baseline_venv(load()) / "bin" if "community" in contenders and base_sizes else None
        floor_python = floor_venv(load()) / "bin" / "python" if "floor" in contenders else None
        print(f"bench emulators: {args.net[:-3]}x.y:{args.port}, state {s.state} (the lab's are untouched); "
              f"forks {args.forks}; {os.cpu_count()} CPUs", flush=True)
        for n in sizes:
            chosen = [c for c in contenders if c != "community" or n in base_sizes]
            results[str(n)] = run_size(bench, n, chosen, ours_bin, base_bin, floor_python)
    except KeyboardInterrupt:
        print("interrupted: stopping the bench emulators", flush=True)
        if bench.current and bench.current.poll() is None:
            bench.current.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                bench.current.wait(10)
        raise SystemExit(130) from None
    finally:
        bmc_emulator.stop(s)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - started
    print()
    for n, res in results.items():
        print("\n".join(table(int(n), res)))
    summary = summarize(results)
    bar = summary["bar"]

    def word(v):
        return "met" if v else ("MISSED" if v is False else "not measured")

    print(f"bar: >= {BAR['speedup_vs_community_min']}x faster than community.general at {BAR['at_size']} BMCs "
          f"(wall first/no-change at {bar['speedup_vs_community']['at_size']}: "
          f"{bar['speedup_vs_community']['measured']}): {word(bar['speedup_vs_community']['met'])}; "
          f"within 2x of the floor (ours/floor wall: {bar['within_2x_of_floor']['measured']}): "
          f"{word(bar['within_2x_of_floor']['met'])}; second run changed=0 "
          f"({bar['second_run_changed_0']['measured']}): {word(bar['second_run_changed_0']['met'])}")
    print("notes: community.general verifies TLS with ca_path (the bench CA) and gets QuietBoot as the string "
          "\"false\" (its == compare vs the emulator's stored strings); ours sends the registry-typed false. "
          f"Requests per BMC: ours {OURS_REQUESTS}, floor {FLOOR_REQUESTS}. CPU: client = the contender's "
          "processes (getrusage children), BMC = the bench emulators. "
          f"Bench wall {wall:.0f}s.")
    print(json.dumps({"benchmark": "bios", "sizes": sizes, "baseline_sizes": base_sizes, "forks": args.forks,
                      "cpus": os.cpu_count(), "attributes": DESIRED, "requests_per_bmc": {
                          "ours": OURS_REQUESTS, "floor": FLOOR_REQUESTS},
                      "results": results, **summary, "bench_wall_s": round(wall, 1)}))


if __name__ == "__main__":
    main()
