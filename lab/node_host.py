"""What the lab's emulated servers get from the machine they share: a service manager and stand-in GPUs.

Service manager: the servers have no systemd (this machine has no init of its own), and the job runner kills
every process a run leaves behind, so a daemon a cluster stage starts over the local connection would die with
the stage. One supervisord, started here outside any job, stands in for the servers' systemd: the slurm_cluster
role adds its programs (munged, slurmctld, a slurmd per server) through supervisorctl, as it would on an
init-less host anywhere.

GPUs: a GPU cannot exist here. Each server gets a root, nodes/<name>/, whose dev/ holds character devices of
its vendor's kind and count (gpu_vendors: /dev/nvidiaN 195:N, renderD 226:128+N, accelN 261:N), which is what
slurmd checks gres.conf's File= against. Nothing opens them.
"""

import hashlib
import os
import shutil
import stat
from pathlib import Path

from ansible_collections.gpucloud.infra.plugins.module_utils import gpu_vendors
from lab.proc import LabError, read_pid, run, stop_pid, wait_for
from lab.settings import Settings

SLURMCTLD_PORT_OFFSET = 10000  # slurmctld of a cluster: base + offset + its primary node's NetBox id
SUPERVISORD_CONF = """\
; The lab's stand-in for its servers' systemd (lab/node_host.py). Programs live in conf.d/.
[unix_http_server]
file={sock}
chmod=0700

[supervisord]
pidfile={pid}
logfile={log}
logfile_maxbytes=10MB
logfile_backups=1
childlogdir={child_logs}
nodaemon=false

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sock}

[include]
files = {include}/*.conf
"""


SYSTEM_PYTHON = "/usr/bin/python3"


def server_compose(s: Settings) -> dict[str, str]:
    """gpucloud_netbox `compose` entries for the emulated servers: reached with the local connection, running
    modules with this machine's system Python (what a Debian server has; the checkout's virtualenv is the
    controller's), the slurm_cluster role's lab settings, and Kubernetes rendered and validated only (no control
    plane can run here) under the lab's state."""
    return {"ansible_connection": "'local'", "ansible_python_interpreter": repr(SYSTEM_PYTHON), **slurm_compose(s),
            "k8s_cluster_apply": "false", "k8s_cluster_render_root": repr(str(k8s_root(s)))}


def k8s_root(s: Settings) -> Path:
    return s.state / "lab" / "k8s"


def _lab_var(s: Settings) -> Path:
    """Outside the checkout: munged and slurmctld run as their own users, who must traverse every parent, and a
    checkout may live under a private home. One directory per state directory, so two labs never meet."""
    return Path("/var/lib/gpucloud-lab") / hashlib.sha256(str(s.state).encode()).hexdigest()[:8]


def slurm_root(s: Settings) -> Path:
    return _lab_var(s) / "slurm"


def slurmd_spool(s: Settings) -> Path:
    """One short spool for every lab cluster: slurmstepd's socket is <spool>/<node>/<node>_<job>.<step>, and a unix
    socket path has 107 characters at most. Server names are unique, so per-node spools never meet."""
    return _lab_var(s) / "spool"


def slurm_compose(s: Settings) -> dict[str, str]:
    """gpucloud_netbox `compose` entries that run the slurm_cluster role on the emulated servers: their daemons
    under the lab's supervisord, each cluster under its own root with its own munge (so not configless: a
    configless slurmd can only use munge's default socket), a slurmd per server on a port of its own, slurmctld on
    a port of its primary's, NetBox's CPUs and memory trusted over this small machine's, and the process tracking
    this kernel supports (no cgroup v2 delegation here)."""
    return {
        "slurm_cluster_service_manager": "'supervisor'",
        "slurm_cluster_supervisor_config": repr(str(supervisor_conf(s))),
        "slurm_cluster_supervisor_conf_dir": repr(str(supervisor_dir(s) / "conf.d")),
        "slurm_cluster_root": repr(str(slurm_root(s))),
        "slurm_cluster_single_host": "true",
        "slurm_cluster_configless": "false",
        "slurm_cluster_config_overrides": "true",
        "slurm_cluster_proctrack_type": "'proctrack/linuxproc'",
        "slurm_cluster_task_plugin": "'task/none'",
        "slurm_cluster_node_port": f"{s.slurm_port_base} + netbox_id",
        "slurm_cluster_slurmctld_port": f"{s.slurm_port_base + SLURMCTLD_PORT_OFFSET} + netbox_id",
        "slurm_cluster_device_root": f"{str(root(s)) + '/'!r} ~ inventory_hostname",
        "slurm_cluster_slurmd_spool_dir": repr(str(slurmd_spool(s))),
        "slurm_cluster_packages_install": "false",  # bin/setup installed them; apt would only cost time
    }


def root(s: Settings) -> Path:
    return s.state / "lab" / "nodes"


def supervisor_dir(s: Settings) -> Path:
    return s.state / "supervisor"


def supervisor_conf(s: Settings) -> Path:
    return supervisor_dir(s) / "supervisord.conf"


def _pidfile(s: Settings) -> Path:
    return s.run / "supervisord.pid"


def _socket(s: Settings) -> Path:
    return s.run / "supervisor.sock"


def ensure_supervisor(s: Settings) -> bool:
    """supervisord running with the lab's configuration; True when it was started."""
    conf_d = supervisor_dir(s) / "conf.d"
    conf_d.mkdir(parents=True, exist_ok=True)
    (s.logs / "supervisor").mkdir(parents=True, exist_ok=True)
    text = SUPERVISORD_CONF.format(sock=_socket(s), pid=_pidfile(s), log=s.logs / "supervisord.log",
                                   child_logs=s.logs / "supervisor", include=conf_d)
    conf = supervisor_conf(s)
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    if read_pid(_pidfile(s)) and _socket(s).exists():
        return False
    exe = shutil.which("supervisord")
    if not exe:
        raise LabError("supervisord not found: apt-get install supervisor")
    run([exe, "-c", str(conf)])
    wait_for(_socket(s).exists, "supervisord", 60, s.logs / "supervisord.log")
    return True


def stop_supervisor(s: Settings) -> bool:
    """Stop supervisord and every program it runs (the lab's Slurm daemons)."""
    return stop_pid(_pidfile(s), "supervisord", timeout=60)


def gpu_root(s: Settings, node: str) -> Path:
    return root(s) / node


def ensure_gpu_devices(s: Settings, servers: list[dict]) -> int:
    """Stand-in device files for each server ({name, gpu_vendor, gpu_count}); returns how many were made."""
    made = 0
    for server in servers:
        if not server.get("gpu_vendor") or not server.get("gpu_count"):
            continue
        for device in gpu_vendors.device_files(server["gpu_vendor"], server["gpu_count"]):
            path = gpu_root(s, server["name"]) / device["path"].lstrip("/")
            made += _char_device(path, device["major"], device["minor"])
    return made


def _char_device(path: Path, major: int, minor: int) -> bool:
    try:
        st = path.lstat()
        if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == major and os.minor(st.st_rdev) == minor:
            return False
        path.unlink()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mknod(path, 0o660 | stat.S_IFCHR, os.makedev(major, minor))
    except PermissionError as exc:
        raise LabError(f"making stand-in GPU device {path} needs root (mknod): {exc}") from exc
    return True
