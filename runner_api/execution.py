"""One job, run by ansible-runner inside the RQ work horse.

The horse heartbeats while ansible runs; the API's cancel flag and the death of the parent worker
both stop ansible-runner for real (its cancel callback kills ansible-playbook). The run sees only
the tenant's nodes: its inventory is the gpucloud_netbox plugin with the tenant fixed.
"""

import logging
import os
import sys
import threading
import time
from pathlib import Path

import ansible_runner
import yaml

from runner_api import journal, metrics, process_tree, store
from runner_api.admission import Admission
from runner_api.catalogue import load as load_catalogue
from runner_api.events import END, EventLog, count_result, display, host_stats
from runner_api.jobs import JobStatus, JobStore
from runner_api.settings import Settings

log = logging.getLogger(__name__)
# Ansible and ansible-runner see only these from the worker's environment: the rest may hold
# secrets (NetBox token, Redis password) that ansible-runner would copy into its artifacts.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "VIRTUAL_ENV", "PYTHONPATH")


class UnsafeDumper(yaml.SafeDumper):
    """Writes every string as `!unsafe`, so Ansible never templates tenant input."""


UnsafeDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value, style="'"))


def write_extravars(path: Path, variables: dict) -> None:
    path.write_text(yaml.dump(variables, Dumper=UnsafeDumper, default_flow_style=False))
    path.chmod(0o600)


def write_inventory(settings: Settings, tenant: str) -> Path:
    """The tenant's inventory source: NetBox, tenant fixed. Holds the NetBox token, so 0600 and
    outside the job's private data directory (whose artifacts are kept)."""
    settings.inventories_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = settings.inventories_dir / f"{tenant}.gpucloud_netbox.yml"
    config = {
        "plugin": "gpucloud_netbox", "url": settings.netbox_url, "token": settings.netbox_token,
        "tenant": tenant, "device_roles": ["gpu-server"], "interfaces": True,
        "cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_timeout": 86400,
        "cache_connection": str(settings.data_dir / "inventory-cache" / tenant),
    } | settings.inventory_options
    text = yaml.safe_dump(config, sort_keys=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(path)
    return path


def run_job(job_id: str) -> str:
    """RQ entry point (referenced by name; arguments and result are JSON)."""
    return JobRun(Settings.from_env(), job_id).run()


class JobRun:
    def __init__(self, settings: Settings, job_id: str):
        self.settings = settings
        self.store = store.Store(settings.redis_url)
        self.jobs = JobStore(self.store.redis)
        self.job = self.jobs.get(job_id)
        self.events = EventLog(self.store.redis, job_id)
        self.stop = threading.Event()
        self.cancel = threading.Event()
        self.reason: str | None = None
        self.lost = False
        self.timed_out = False
        self.killed = False
        self.deadline = time.monotonic() + (self.job["timeout"] if self.job else 0)
        self.stats: dict = {}
        self.seen: dict[str, dict] = {}  # per-host counts from events, for runs cut short before their stats
        self.parent = os.getppid()
        self.internal = False

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> str:
        job = self.job
        if job is None:
            return "skipped"
        admission = Admission(self.store.redis, self.settings.default_concurrency)
        if job["status"] != JobStatus.QUEUED:  # canceled after admission: give back what admission took
            admission.release(job["tenant"], job["id"])
            return "skipped"
        if job.get("cancel_requested"):  # canceled between admission and start: never start ansible
            self.reason = f"canceled by {job['cancel_requested']}"
            return self._finish(JobStatus.CANCELED, None, time.time())
        started = time.time()
        self.jobs.update(job["id"], status=JobStatus.RUNNING, started_at=started, worker=os.environ.get(
            "RQ_WORKER_ID", job.get("worker")))
        self.events.publish({"event": "job_start", "created": started, "correlation_id": job["correlation_id"],
                             "nodes": len(job.get("nodes") or [])})
        process_tree.become_subreaper()
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        try:
            status, rc = self._ansible()
        except Exception as exc:
            log.exception("job %s failed to run", job["id"])
            status, rc, self.reason = JobStatus.FAILED, None, f"runner error: {exc}"
        finally:
            self.stop.set()
            beat.join(timeout=5)
        return self._finish(status, rc, started)

    def _heartbeat(self) -> None:
        key, job_id = store.job_alive(self.job["id"]), self.job["id"]
        while not self.stop.wait(1.0):
            pipe = self.store.redis.pipeline()
            pipe.set(key, os.getpid(), ex=self.settings.heartbeat_ttl)
            pipe.hget(store.job_key(job_id), "cancel_requested")
            _, cancel_by = pipe.execute()
            if cancel_by and not self.cancel.is_set():
                self.reason = f"canceled by {cancel_by}"
                self.cancel.set()
            if os.getppid() != self.parent and not self.cancel.is_set():
                self.lost = True
                self.reason = f"worker process {self.parent} died while the job ran"
                self.cancel.set()

    # -- ansible-runner ----------------------------------------------------------------------
    def _ansible(self) -> tuple[JobStatus, int | None]:
        job, settings = self.job, self.settings
        entry = load_catalogue(settings.catalogue, settings.repo).get(job["playbook"])
        self.internal = bool(entry and entry.internal)
        if entry is None:
            self.reason = f"playbook {job['playbook']!r} left the catalogue"
            return JobStatus.FAILED, None
        private = settings.jobs_dir / job["id"]
        private.mkdir(parents=True, exist_ok=True, mode=0o700)
        extravars = private / "tenant-vars.yml"
        write_extravars(extravars, job.get("variables") or {})
        inventory = write_inventory(settings, job["tenant"])
        inventories, extra_env = [str(inventory)], {}
        if entry.internal:  # an operator-written cluster stage: NetBox, credentials, maybe the fabric
            extra_env = {n: os.environ[n] for n in ("NETBOX_URL", "NETBOX_TOKEN", *settings.job_env)
                         if n in os.environ}
            if entry.fabric and settings.fabric_inventory:
                inventories.append(settings.fabric_inventory)
        for name in list(os.environ):
            if name not in PASSED_ENV:
                del os.environ[name]
        venv_bin = str(Path(sys.executable).parent)  # ansible-playbook lives beside this interpreter
        os.environ["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "/usr/bin:/bin")])
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(entry.playbook.parent),
            playbook=entry.playbook.name,
            inventory=inventories,
            limit=",".join(job.get("limit") or []) or None,
            cmdline=f"-e @{extravars}",
            envvars={**extra_env, "ANSIBLE_CONFIG": str(settings.ansible_cfg), "ANSIBLE_FORCE_COLOR": "0",
                     "GPUCLOUD_JOB_ID": job["id"], "GPUCLOUD_CORRELATION_ID": job["correlation_id"] or ""},
            ident="run",
            quiet=True,
            event_handler=self._on_event,
            cancel_callback=self._should_stop,
            settings={"pexpect_timeout": 1, "suppress_ansible_output": True},
            rotate_artifacts=1,
            suppress_env_files=True,
        )
        process_tree.kill_descendants()  # whatever the run left behind (e.g. a detached module)
        if extra_env:  # ansible-runner records the run's environment there: NetBox token, credentials
            (private / "artifacts" / "run" / "command").unlink(missing_ok=True)
        status = JobStatus(runner.status) if runner.status in set(JobStatus) else JobStatus.FAILED
        if status is JobStatus.CANCELED and self.lost:
            status = JobStatus.FAILED
        elif status is JobStatus.CANCELED and self.timed_out:
            status = JobStatus.TIMEOUT
        elif status is JobStatus.FAILED and not self.reason:
            failed = sorted(h for h, s in self.stats.items() if s["failed"] or s["unreachable"])
            self.reason = (f"failed on {', '.join(failed[:10])}" if failed
                           else f"ansible-playbook exited with rc {runner.rc}")
        return status, runner.rc

    def _should_stop(self) -> bool:
        """ansible-runner's cancel callback (polled every second): cancel, timeout or a lost worker."""
        if not self.cancel.is_set() and time.monotonic() > self.deadline:
            self.timed_out = True
            self.reason = f"timed out after {self.job['timeout']} s"
            self.cancel.set()
        if self.cancel.is_set() and not self.killed:
            self.killed = True
            process_tree.kill_descendants(reap=False)
        return self.cancel.is_set()

    def _on_event(self, event: dict) -> bool:
        shown = display(event) | {"correlation_id": self.job["correlation_id"]}
        host = (event.get("event_data") or {}).get("host")
        if self.internal and event.get("event", "").startswith("runner_") and host not in self.job["nodes"]:
            # A cluster stage's switch and controller results carry the whole site's fabric, other tenants'
            # networks included: the tenant sees their task, host and outcome, not their output.
            shown["stdout"] = ""
        if event.get("event") == "playbook_on_stats":
            self.stats = host_stats(event.get("event_data") or {})
        count_result(self.seen, event)
        self.events.publish(shown)
        return True  # keep it in the private artifacts too

    # -- outcome -------------------------------------------------------------------------
    def _finish(self, status: JobStatus, rc: int | None, started: float) -> str:
        job = self.job
        finished = time.time()
        self.stats = self.stats or self.seen  # a canceled or timed-out run never reaches its recap
        changed = sum(s["changed"] for s in self.stats.values())
        Admission(self.store.redis, self.settings.default_concurrency).release(job["tenant"], job["id"])
        note = journal.write(self.settings, job, str(status), self.stats) if self.stats else "no devices touched"
        pipe = self.store.redis.pipeline()
        self.jobs.update(job["id"], pipe=pipe, status=status, finished_at=finished, rc=rc, changed=changed,
                         stats=self.stats, reason=self.reason, journal=note)
        metrics.record_outcome(pipe, job["tenant"], job["playbook"], str(status), finished - started)
        self.events.publish({"event": END, "status": str(status), "reason": self.reason, "changed": changed,
                             "created": finished, "correlation_id": job["correlation_id"]}, pipe=pipe)
        pipe.execute()
        log.info("job %s %s (tenant %s, correlation id %s)", job["id"], status, job["tenant"], job["correlation_id"])
        if job.get("cluster"):
            self._advance_cluster()
        return str(status)

    def _advance_cluster(self) -> None:
        """A cluster stage ended: start the next one (clusters.refresh catches up if this fails)."""
        from runner_api import clusters  # the API's runtime, built only for pipeline jobs
        from runner_api.runtime import Runtime
        try:
            clusters.advance(Runtime.build(self.settings), self.jobs.get(self.job["id"]))
        except Exception:
            log.exception("job %s: cluster %s not advanced", self.job["id"], self.job["cluster"])
