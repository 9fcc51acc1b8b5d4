"""A private Redis on 127.0.0.1 with AOF on, shared by NetBox (db 0, 1) and the job runner (db 2)."""

import shutil

from lab.proc import LabError, port_open, read_pid, run, stop_pid, wait_for
from lab.settings import Settings


def _pidfile(s: Settings):
    return s.run / "redis.pid"


def ensure_running(s: Settings) -> bool:
    if read_pid(_pidfile(s)) and port_open(s.redis_port):
        return False
    exe = shutil.which("redis-server")
    if not exe:
        raise LabError("redis-server not found: apt-get install redis-server")
    data = s.state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    run([exe, "--bind", "127.0.0.1", "--port", str(s.redis_port), "--dir", str(data),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "yes",
         "--pidfile", str(_pidfile(s)), "--logfile", str(s.logs / "redis.log")])
    wait_for(lambda: port_open(s.redis_port), "Redis", 60, s.logs / "redis.log")
    return True


def stop(s: Settings) -> bool:
    return stop_pid(_pidfile(s), "redis")
