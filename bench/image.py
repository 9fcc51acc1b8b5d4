"""bench/image: the golden image build (playbooks/build_image.yml) against diskimage-builder's debian-minimal.

Both build a Debian bookworm qcow2 on this machine, one after the other in one invocation, each in its own
temporary directories (under --work-root, default /var/tmp), so the machine's own caches are left alone.
  - ours: `ansible-playbook playbooks/build_image.yml` as root with golden_image_output_dir/work_dir in the
    temporary directory:
      cold         golden_image_cache_dir empty: mmdebstrap base, configure, os_tuning, gpu_stack, raw + qcow2
                   + squashfs + manifest;
      no-change    the same again: the build key matches, nothing is built (expect changed=0);
      incremental  after a tuning change (os_tuning_hugepages_by_node_type's default count, a different count
                   per run): the cached base and the previous build's root are reused. The bar: <= 60 s.
    With --skip-cold the machine's base cache is used (~/.cache/gpucloud/images or $GPUCLOUD_IMAGE_CACHE) and
    the first build is reported as "first (cached base)" instead of cold.
    With --smoke VARS (the smoke size `make test` runs): one no-change run of an image that is already built,
    VARS a JSON file of the build's extra vars (golden_image_output_dir and golden_image_work_dir included), and
    nothing else: no cold or incremental build, no dib (its every run is a full build, minutes).
  - diskimage-builder 3.43.0 (PyPI, in a venv cached under ~/.cache/gpucloud/venvs/bench-dib):
    `disk-image-create -o <out> -t qcow2 debian-minimal` with DIB_RELEASE=bookworm and Debian's reachable
    mirrors (DIB_DISTRIBUTION_MIRROR, DIB_DEBIAN_SECURITY_MIRROR: security.debian.org is not reachable here).
    Without the `vm` element: `vm` partitions the disk and installs a boot loader, which needs device-mapper
    (kpartx), and this kernel has none; so dib's image, like our raw/qcow2, is one ext4 file system with the
    kernel in it (ours boots it with its own kernel and initrd; dib's would need `vm` to boot).
      cold         DIB_IMAGE_CACHE empty; DIB_DEBOOTSTRAP_CACHE=1 so the debootstrap result is saved;
      warm         the same cache: DIB_DEBIAN_USE_DEBOOTSTRAP_CACHE=1 reuses the debootstrap tarball and the
                   apt archive cache (the .debs); everything else is redone. dib has no no-change or
                   incremental mode: every run is a full build, so its warm figure stands against both.
    With --skip-cold dib uses ~/.cache/image-create (filled by its first run there).
Reported per run: wall time, CPU seconds of the run's processes (getrusage children), the PLAY RECAP sums
for ours, the qcow2's size. Build tools missing on the machine are installed with apt-get first (named).
The machine is shared: wall times include whatever else runs; the load average is printed with them.
The last line is one JSON object.
"""

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "build_image.yml"
DIB_PACKAGES = ["diskimage-builder==3.43.0"]
DIB_ENV = {"DIB_RELEASE": "bookworm", "DIB_DISTRIBUTION_MIRROR": "http://deb.debian.org/debian",
           "DIB_DEBIAN_SECURITY_MIRROR": "http://deb.debian.org/debian-security"}
# Tools the two builders call, by the Debian package that ships them. dib runs everything through sudo and
# debootstrap; ours prefers mmdebstrap and falls back to debootstrap.
TOOLS = {"sudo": "sudo", "debootstrap": "debootstrap", "mmdebstrap": "mmdebstrap", "qemu-img": "qemu-utils",
         "mksquashfs": "squashfs-tools", "mkfs.ext4": "e2fsprogs", "losetup": "mount"}
PROFILE = re.compile(r"^(\S.*?) -{3,} (\d+\.\d+)s$", re.M)  # ansible.posix.profile_tasks' summary
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)
BAR_INCREMENTAL_S = 60
# The tuning change for the incremental runs: hugepages of the default node type, a new count each run.
HUGEPAGES_VAR = "os_tuning_hugepages_by_node_type"
HUGEPAGES_COUNTS = [512, 768, 1536, 640, 896]


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def recap(text: str) -> dict:
    rows = RECAP.findall(text)
    keys = ("ok", "changed", "unreachable", "failed", "skipped")
    return {k: sum(int(r[i + 1]) for r in rows) for i, k in enumerate(keys)}


def slowest(text: str, n: int = 3) -> dict:
    """The n slowest tasks from profile_tasks' summary (it prints them slowest first)."""
    return {name.strip(): float(secs) for name, secs in PROFILE.findall(text.split("PLAY RECAP")[-1])[:n]}


def ensure_tools() -> None:
    """apt-get install the Debian packages whose tools are missing (the bench needs root anyway)."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if not missing:
        return
    print(f"installing build tools missing on this machine with apt-get: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


def dib_venv(cache: Path) -> Path:
    venv = cache / "venvs" / "bench-dib"
    marker = venv / ".complete"
    wanted = "\n".join(DIB_PACKAGES)
    if not (marker.exists() and marker.read_text() == wanted):
        print(f"installing the baseline ({' '.join(DIB_PACKAGES)}) into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *DIB_PACKAGES], check=True)
        marker.write_text(wanted)
    return venv


def mounts_under(path: Path) -> list[str]:
    """Mount points below path: a failed build can leave its /proc or /dev binds, which rmtree must not enter."""
    prefix = f"{path}/"
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if p.startswith(prefix)]


def load() -> float:
    return os.getloadavg()[0]


class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.current: subprocess.Popen | None = None

    def timed(self, cmd: list[str], env: dict, log: Path) -> dict:
        load0, cpu0, t0 = load(), children_cpu(), time.perf_counter()
        with log.open("w") as out:
            # Its own session, so an interrupt can stop the build with everything it started.
            self.current = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
            code = self.current.wait()
        self.current = None
        return {"rc": code, "wall_s": round(time.perf_counter() - t0, 1),
                "cpu_s": round(children_cpu() - cpu0, 1), "load_before": round(load0, 1),
                "load_after": round(load(), 1)}

    def stop(self) -> None:
        proc = self.current
        if proc and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def failure(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    picked = [ln for ln in lines if ln.startswith(("fatal:", "ERROR", "[ERROR", "failed:"))] or lines[-5:]
    return [ln[:300] for ln in picked[:4]]


# -- ours ---------------------------------------------------------------------------------------------

class Ours:
    def __init__(self, bench: Bench, cache_dir: Path | None, base_vars: dict | None = None):
        """base_vars: an existing build's extra vars (--smoke); its output and work directories are used."""
        self.bench = bench
        self.cache_dir = cache_dir
        self.base_vars = base_vars or {}
        self.out = Path(self.base_vars.get("golden_image_output_dir") or bench.work / "ours-out")
        self.build = Path(self.base_vars.get("golden_image_work_dir") or bench.work / "ours-work")

    def run(self, label: str, extra: dict | None = None) -> dict:
        evars = {**self.base_vars, "golden_image_output_dir": str(self.out), "golden_image_work_dir": str(self.build),
                 **({"golden_image_cache_dir": str(self.cache_dir)} if self.cache_dir else {}), **(extra or {})}
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
               "ANSIBLE_DEPRECATION_WARNINGS": "0", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
        log = self.bench.work / f"ours-{label}.log"
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK), "-e", json.dumps(evars)]
        out = self.bench.timed(cmd, env, log)
        text = log.read_text(errors="replace")
        out["recap"], out["slowest_tasks"] = recap(text), slowest(text)
        manifest = self.manifest() or {}
        out["version"], out["build_key"] = manifest.get("version"), manifest.get("build_key")
        out["qcow2_bytes"] = manifest.get("artifacts", {}).get("qcow2", {}).get("bytes")
        if out["rc"] != 0 or out["recap"]["failed"]:
            out["errors"] = failure(log)
            print(f"    ours {label}: rc={out['rc']} (log {log}): " + " | ".join(out["errors"]), flush=True)
        return out

    def manifest(self) -> dict | None:
        found = sorted(self.out.glob("*-*.manifest.json"), key=lambda p: p.stat().st_mtime)
        return json.loads(found[-1].read_text()) if found else None


# -- diskimage-builder --------------------------------------------------------------------------------

class Dib:
    def __init__(self, bench: Bench, venv: Path, cache_dir: Path | None):
        self.bench, self.venv, self.cache_dir = bench, venv, cache_dir
        self.out = bench.work / "dib-out"
        self.out.mkdir(exist_ok=True)

    def run(self, label: str) -> dict:
        image = self.out / f"debian-{label}"
        env = {**os.environ, **DIB_ENV, "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}",
               "DIB_DEBOOTSTRAP_CACHE": "1", "DIB_DEBIAN_USE_DEBOOTSTRAP_CACHE": "1"}
        if self.cache_dir:
            env["DIB_IMAGE_CACHE"] = str(self.cache_dir)
        log = self.bench.work / f"dib-{label}.log"
        out = self.bench.timed([str(self.venv / "bin" / "disk-image-create"), "-o", str(image), "-t", "qcow2",
                                "debian-minimal"], env, log)
        qcow2 = image.with_suffix(".qcow2")
        out["qcow2_bytes"] = qcow2.stat().st_size if qcow2.exists() else None
        out["reused"] = self.reused(log)
        if out["rc"] != 0 or not qcow2.exists():
            out["errors"] = failure(log)
            print(f"    dib {label}: rc={out['rc']} (log {log}): " + " | ".join(out["errors"]), flush=True)
        # The next run writes its own image; the last one is enough on disk.
        for old in self.out.glob("*"):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            elif old != qcow2:
                old.unlink(missing_ok=True)
        return out

    @staticmethod
    def reused(log: Path) -> list[str]:
        """What the run took from dib's cache, from its log: the debootstrap tarball, and how many .debs
        apt still fetched (the rest came from the archive cache dib bind-mounts into the root)."""
        text = log.read_text(errors="replace")
        reused = ["debootstrap tarball"] if "found in cache. Using." in text else []
        fetched = len(re.findall(r"Get:\d+ \S+ \S+ \S+ \S+ (?:amd64|all) \S+ \[", text))
        reused.append(f"{fetched} .debs downloaded")
        return reused


# -- report ------------------------------------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def median(runs: list[dict], key: str = "wall_s") -> float | None:
    values = [r[key] for r in runs if r.get("rc") == 0 and r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def mib(n: int | None) -> str:
    return f"{n / 2**20:.0f} MiB" if n else "-"


def table(results: dict) -> list[str]:
    lines = [f"  {'contender':14} {'run':22} {'wall s':>8} {'CPU s':>8} {'load':>10} {'changed':>8} {'qcow2':>9}"]
    for name, runs in results.items():
        for run, entries in runs.items():
            for r in entries:
                changed = r.get("recap", {}).get("changed", "-")
                lines.append(f"  {name:14} {run:22} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
                             f"{r['load_before']:4.1f}>{r['load_after']:<5.1f} {changed!s:>8} "
                             f"{mib(r.get('qcow2_bytes')):>9}" + ("  FAILED" if r["rc"] else "")
                             + ("  (inputs edited meanwhile: a rebuild)" if r.get("inputs_changed") else ""))
    return lines


def last_size(runs: dict) -> int | None:
    sizes = [r["qcow2_bytes"] for entries in runs.values() for r in entries if r.get("qcow2_bytes")]
    return sizes[-1] if sizes else None


def summarize(results: dict) -> dict:
    ours, dib = results.get("ours", {}), results.get("dib", {})
    first_key = "cold" if "cold" in ours else "first (cached base)"
    figures = {
        "ours": {"cold_s": median(ours.get("cold", [])),
                 "first_cached_base_s": median(ours.get("first (cached base)", [])),
                 "no_change_s": median([r for r in ours.get("no-change", []) if not r.get("inputs_changed")]),
                 "incremental_s": median(ours.get("incremental", [])),
                 "qcow2_bytes": last_size(ours)},
        "dib": {"cold_s": median(dib.get("cold", [])), "warm_s": median(dib.get("warm", [])),
                "qcow2_bytes": last_size(dib)},
    }
    o, d = figures["ours"], figures["dib"]
    ratios = {"cold_dib_over_ours": ratio(d["cold_s"], o["cold_s"]),
              "warm_dib_over_ours_incremental": ratio(d["warm_s"], o["incremental_s"]),
              "warm_dib_over_ours_no_change": ratio(d["warm_s"], o["no_change_s"]),
              "qcow2_dib_over_ours": ratio(d["qcow2_bytes"], o["qcow2_bytes"])}
    incremental = [r["wall_s"] for r in ours.get("incremental", []) if r["rc"] == 0]
    no_change = [r["recap"]["changed"] for r in ours.get("no-change", []) if not r.get("inputs_changed")]
    ok = all(r["rc"] == 0 and not r["recap"]["failed"] for runs in ours.values() for r in runs)
    bar = {"incremental_le_60s": {"measured": incremental,
                                  "met": (all(x <= BAR_INCREMENTAL_S for x in incremental)
                                          if incremental and len(incremental) == len(ours["incremental"])
                                          else (False if ours.get("incremental") else None))},
           "no_change_changed_0": {"measured": no_change,
                                   "met": all(c == 0 for c in no_change) if no_change else None},
           "ours_runs_succeeded": ok, "first_build": first_key}
    return {"figures": figures, "ratios": ratios, "bar": bar}


def print_summary(summary: dict) -> None:
    o, d, r = summary["figures"]["ours"], summary["figures"]["dib"], summary["ratios"]

    def s(v):
        return f"{v:.2f}".rstrip("0").rstrip(".") if v is not None else "-"

    print(f"  {'figure':34} {'ours s':>8} {'dib s':>8} {'dib/ours':>9}")
    print(f"  {'cold (empty base cache)':34} {s(o['cold_s']):>8} {s(d['cold_s']):>8} {s(r['cold_dib_over_ours']):>9}")
    if o["first_cached_base_s"] is not None:
        print(f"  {'first build, cached base':34} {s(o['first_cached_base_s']):>8} {'-':>8} {'-':>9}")
    print(f"  {'incremental (tuning change) / warm':34} {s(o['incremental_s']):>8} {s(d['warm_s']):>8} "
          f"{s(r['warm_dib_over_ours_incremental']):>9}")
    print(f"  {'no-change re-run / warm':34} {s(o['no_change_s']):>8} {s(d['warm_s']):>8} "
          f"{s(r['warm_dib_over_ours_no_change']):>9}")
    print(f"  {'qcow2 size':34} {mib(o['qcow2_bytes']):>8} {mib(d['qcow2_bytes']):>8} "
          f"{s(r['qcow2_dib_over_ours']):>9}")


def smoke_vars(path: Path) -> dict:
    """--smoke's extra vars: a JSON object naming the built image's output and work directories."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--smoke: {path}: expected a JSON file of build_image.yml extra vars: {exc}") from None
    missing = [k for k in ("golden_image_output_dir", "golden_image_work_dir") if not isinstance(data, dict)
               or not data.get(k)]
    if missing:
        raise SystemExit(f"--smoke: {path}: expected {' and '.join(missing)} (the built image's directories)")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-baseline", action="store_true", help="ours only (no diskimage-builder)")
    parser.add_argument("--skip-cold", action="store_true",
                        help="no cold builds: ours from the machine's cached base, dib from ~/.cache/image-create")
    parser.add_argument("--runs", type=int, default=1, help="no-change and incremental runs of ours, warm runs of dib")
    parser.add_argument("--work-root", default="/var/tmp", help="where the temporary build directories go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, images)")
    parser.add_argument("--smoke", type=Path, metavar="VARS",
                        help="one no-change run of the built image whose extra vars this JSON file holds")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/image builds root file systems (chroot, loop devices): run it as root")
    if not PLAYBOOK.exists():
        raise SystemExit(f"{PLAYBOOK} is missing")
    smoke = smoke_vars(args.smoke) if args.smoke else None
    if smoke is not None:
        args.skip_baseline, args.skip_cold, args.runs = True, True, 1
    runs = max(1, min(args.runs, len(HUGEPAGES_COUNTS)))

    sys.path.insert(0, str(REPO))
    from lab.settings import load as settings

    ensure_tools()
    venv = None if args.skip_baseline else dib_venv(settings().cache)
    work = Path(tempfile.mkdtemp(prefix="bench-image-", dir=args.work_root))
    bench = Bench(work)

    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    results: dict[str, dict[str, list[dict]]] = {}

    def record(name: str, run: str, r: dict) -> None:
        results.setdefault(name, {}).setdefault(run, []).append(r)
        changed = r.get("recap", {}).get("changed", "-")
        print(f"    {name} {run:22} wall {r['wall_s']:7.1f}s  CPU {r['cpu_s']:7.1f}s  load {r['load_before']}"
              f"->{r['load_after']}  rc={r['rc']}  changed={changed}  qcow2 {mib(r.get('qcow2_bytes'))}"
              + (f"  reused: {', '.join(r['reused']) or 'nothing'}" if "reused" in r else ""), flush=True)
        if r.get("slowest_tasks"):
            print("      slowest: " + "; ".join(f"{k} {v:.1f}s" for k, v in r["slowest_tasks"].items()), flush=True)

    try:
        print(f"bench image: work {work}; {os.cpu_count()} CPUs, load {load():.1f}", flush=True)
        ours = Ours(bench, None if args.skip_cold else work / "ours-cache", smoke)
        first = "first (cached base)" if args.skip_cold else "cold"
        if smoke is not None:
            print(f"  ours: no-change run of the image in {ours.out} (smoke) ...", flush=True)
            record("ours", "no-change", ours.run("no-change-smoke"))
        else:
            print(f"  ours: {first} build ...", flush=True)
            record("ours", first, ours.run(first.split()[0]))
        for i in range(0 if smoke is not None else runs):
            print(f"  ours: no-change run {i + 1} ...", flush=True)
            before = results["ours"][first][-1].get("build_key")
            r = ours.run(f"no-change-{i + 1}")
            # The build key covers the roles' files: edited while the bench ran, they make a real rebuild.
            r["inputs_changed"] = bool(before and r.get("build_key") and r["build_key"] != before)
            record("ours", "no-change", r)
            if r["inputs_changed"]:
                print("    (the build key changed: role or collection files were edited during the run, so this "
                      "was a rebuild, not a no-change run)", flush=True)
        for i, count in enumerate(HUGEPAGES_COUNTS[:0 if smoke is not None else runs]):
            change = {HUGEPAGES_VAR: {"default": {"size": "2M", "count": count}}}
            print(f"  ours: incremental run {i + 1} ({HUGEPAGES_VAR}.default.count={count}) ...", flush=True)
            record("ours", "incremental", ours.run(f"incremental-{i + 1}", change))
        if venv:
            dib = Dib(bench, venv, None if args.skip_cold else work / "dib-cache")
            if not args.skip_cold:
                print("  dib: cold build ...", flush=True)
                record("dib", "cold", dib.run("cold"))
            for i in range(runs):
                print(f"  dib: warm run {i + 1} ...", flush=True)
                record("dib", "warm", dib.run(f"warm-{i + 1}"))
    except KeyboardInterrupt:
        print("interrupted: stopping the running build", flush=True)
        bench.stop()
        raise SystemExit(130) from None
    finally:
        busy = mounts_under(work)
        if args.keep or busy:
            print(f"kept {work}" + (f" (still mounted there, unmount first: {' '.join(busy)})" if busy else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - started
    print()
    print("\n".join(table(results)))
    summary = summarize(results)
    print()
    print_summary(summary)
    bar = summary["bar"]
    word = {True: "met", False: "MISSED", None: "not measured"}
    print(f"bar: incremental rebuild after a tuning change <= {BAR_INCREMENTAL_S} s with a cached base "
          f"({bar['incremental_le_60s']['measured']}): {word[bar['incremental_le_60s']['met']]}; no-change re-run "
          f"changed=0 ({bar['no_change_changed_0']['measured']}): {word[bar['no_change_changed_0']['met']]}")
    print("notes: the tuning change is os_tuning_hugepages_by_node_type.default.count (a new count per run). "
          "dib has no incremental or no-change mode: every run is a full build, its warm run reusing the "
          "debootstrap tarball and the .deb cache, so its warm figure stands against both. Ours writes raw, "
          "qcow2 (uncompressed), squashfs, kernel, initrd and the manifest; dib (no `vm` element: no "
          "device-mapper here) writes a zlib-compressed qcow2 only. CPU = getrusage of the run's processes. "
          f"Bench wall {wall:.0f}s.")
    print(json.dumps({"benchmark": "image", "cpus": os.cpu_count(), "runs": runs, "smoke": smoke is not None,
                      "skip_cold": args.skip_cold,
                      "skip_baseline": args.skip_baseline, "dib": DIB_PACKAGES[0], "dib_env": DIB_ENV,
                      "tuning_change": HUGEPAGES_VAR, "results": results, **summary,
                      "bench_wall_s": round(wall, 1)}))


if __name__ == "__main__":
    main()
