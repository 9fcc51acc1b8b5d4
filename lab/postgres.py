"""A private PostgreSQL cluster on 127.0.0.1 for NetBox, with dump and restore.

PostgreSQL refuses to run as root, so when the lab runs as root the cluster belongs to the
`postgres` system user. Durability settings are relaxed (fsync off): this is a disposable lab
database whose every state can be rebuilt from a cached dump, never an operator's NetBox.
"""

import hashlib
import os
import shutil
from pathlib import Path

from lab.proc import LabError, port_open, read_pid, run, stop_pid, wait_for
from lab.settings import Settings

DB_NAME = "netbox"
DB_USER = "netbox"


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        raise LabError("PostgreSQL server binaries not found: apt-get install postgresql")
    return versions[-1].parent


def _owner() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _root(s: Settings) -> Path:
    """Where the cluster lives. As root, the postgres user must reach it, and a checkout under
    /root cannot be reached; so it lives under /var/tmp, named after the state directory."""
    if not _owner():
        return s.state
    tag = hashlib.sha256(str(s.state).encode()).hexdigest()[:12]
    return Path("/var/tmp/gpucloud") / tag


def data_dir(s: Settings) -> Path:
    return _root(s) / "pg"


def socket_dir(s: Settings) -> Path:
    return _root(s) / "run"


def _chown(path: Path) -> None:
    if _owner():
        shutil.chown(path, user="postgres")


def ensure_running(s: Settings) -> bool:
    """Initialise the cluster if needed and start it; True when it was started now."""
    pgdata = data_dir(s)
    if read_pid(pgdata / "postmaster.pid") and port_open(s.pg_port):
        return False
    socket_dir(s).mkdir(parents=True, exist_ok=True)
    _chown(socket_dir(s))
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        pgdata.chmod(0o700)
        _chown(pgdata)
        run([str(_bindir() / "initdb"), "-D", str(pgdata), "-U", DB_USER, "--auth=trust", "-E", "UTF8"],
            user=_owner(), log=s.logs / "postgres.log")
    opts = (f"-c listen_addresses=127.0.0.1 -p {s.pg_port} -k {socket_dir(s)} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    run([str(_bindir() / "pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-o", opts,
         "-w", "-t", "60", "start"], user=_owner())
    wait_for(lambda: port_open(s.pg_port), "PostgreSQL", 120, pgdata / "server.log")
    return True


def stop(s: Settings) -> bool:
    return stop_pid(data_dir(s) / "postmaster.pid", "postgresql")


def _client(s: Settings, tool: str, *args: str, **kw):
    return run([str(_bindir() / tool), "-h", "127.0.0.1", "-p", str(s.pg_port), "-U", DB_USER, *args], **kw)


def psql(s: Settings, sql: str, db: str = "postgres") -> str:
    out = _client(s, "psql", "-d", db, "-tAc", sql).stdout.decode()
    return out.strip()


def database_exists(s: Settings, name: str = DB_NAME) -> bool:
    return psql(s, f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def recreate_database(s: Settings, name: str = DB_NAME, template: str | None = None) -> None:
    # Terminate NetBox's pooled connections first, or DROP DATABASE waits for them forever.
    psql(s, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
            "AND pid <> pg_backend_pid()")
    psql(s, f'DROP DATABASE IF EXISTS "{name}"')
    psql(s, f'CREATE DATABASE "{name}" OWNER {DB_USER}' + (f' TEMPLATE "{template}"' if template else ""))


def dump(s: Settings, path: Path, name: str = DB_NAME) -> None:
    """Write a custom-format dump atomically, so a half-written file is never taken for a cache hit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    _client(s, "pg_dump", "-Fc", "-Z", "1", "-d", name, "-f", str(tmp))
    tmp.chmod(0o600)  # the dump holds the lab admin's password hash and token digests
    tmp.replace(path)


def template_of(path: Path) -> str:
    """The template database holding a dump's content, named by the dump's path and its version (size and mtime):
    a regenerated dump gets a new template."""
    st = path.stat()
    return "gpucloud_tmpl_" + hashlib.sha256(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _drop_stale_templates(s: Settings) -> None:
    """Templates whose dump is gone or was regenerated (each template's comment names its dump), and partial ones."""
    rows = psql(s, "SELECT datname || '|' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                   "WHERE starts_with(datname, 'gpucloud_tmpl_')")
    for row in filter(None, rows.splitlines()):
        name, dump = row.split("|", 1)
        if not dump or not Path(dump).is_file() or template_of(Path(dump)) != name:
            psql(s, f'DROP DATABASE IF EXISTS "{name}"')


def _ensure_template(s: Settings, path: Path) -> str:
    """The dump restored once into a template database (planner statistics included), atomically: restored under a
    partial name, then renamed, so an interrupted restore is never taken for a template."""
    template = template_of(path)
    if database_exists(s, template):
        return template
    _drop_stale_templates(s)
    partial = f"{template}_partial"
    recreate_database(s, partial)
    _client(s, "pg_restore", "--no-owner", "-j", "2", "-d", partial, str(path), log=s.logs / "postgres.log")
    # A restore carries no planner statistics; without them NetBox's joins run on guesses until
    # autovacuum catches up, many times slower. A template's statistics are copied with it.
    _client(s, "vacuumdb", "--analyze-only", "-d", partial, log=s.logs / "postgres.log")
    psql(s, f'ALTER DATABASE "{partial}" RENAME TO "{template}"')
    psql(s, f'COMMENT ON DATABASE "{template}" IS {_literal(str(path))}')
    return template


def _literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings: only the quote is special)."""
    return "'" + text.replace("'", "''") + "'"


def restore(s: Settings, path: Path, name: str = DB_NAME) -> None:
    """Replace database `name` with the dump's content. The first restore of a dump fills a template database
    (pg_restore and analyze, seconds of CPU); every later one copies the template (CREATE DATABASE ... TEMPLATE),
    which is what makes a test's "restore the fleet afterwards" cheap."""
    recreate_database(s, name, template=_ensure_template(s, path))
