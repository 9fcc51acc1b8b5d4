"""`gpucloud`: the command-line client of the runner API.

Log in once (`gpucloud login`), then launch catalogued playbooks and watch them live, list, inspect
and cancel jobs, and, as a platform admin, manage tenants, tokens and the audit trail. The URL and
token live in a 0600 config file; GPUCLOUD_API_URL and GPUCLOUD_TOKEN override it for every command.
Exit codes: 0 success, 1 a job that did not succeed, 2 an error (API, network, usage).
"""

import codecs
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import click
import requests
import yaml

URL_ENV = "GPUCLOUD_API_URL"
TOKEN_ENV = "GPUCLOUD_TOKEN"
CONFIG_ENV = "GPUCLOUD_CONFIG"
REDIS_ENV = "GPUCLOUD_REDIS_URL"
LOGIN_HINT = "run `gpucloud login` (or set GPUCLOUD_TOKEN)"
TIMEOUT = (5, 30)  # connect, read
STREAM_TIMEOUT = (5, 60)  # the API sends a keepalive every 15 s, so 60 s of silence is a dead connection
MAX_FAILURES = 10  # consecutive failed reconnects before a stream gives up
IDLE = "idle"  # pseudo event: an SSE keepalive comment, or a reconnect
END = "job_end"
FINISHED = ("successful", "failed", "canceled", "timeout")
ROLES = ("platform-admin", "tenant-admin", "tenant-operator", "tenant-viewer")
STATS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")
RESULTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipping",
           "runner_on_unreachable": "unreachable"}
COLORS = {"ok": "green", "changed": "yellow", "failed": "red", "skipping": "cyan", "unreachable": "magenta",
          "successful": "green", "canceled": "yellow", "timeout": "yellow", "queued": "blue", "running": "blue"}
# Server text (Ansible output, reasons, descriptions) may carry tenant input: keep it from driving the terminal.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


# -- errors -------------------------------------------------------------------------------------

class CliError(click.ClickException):
    """One `error:` line, then the field errors, a hint and the correlation id; exit status 2."""

    exit_code = 2

    def __init__(self, message: str, details: Iterable[str] = (), hint: str | None = None,
                 correlation_id: str | None = None):
        super().__init__(message)
        self.details = list(details)
        self.hint = hint
        self.correlation_id = correlation_id

    def show(self, file=None) -> None:
        err = file is None
        click.echo(f"error: {self.message}", file=file, err=err)
        for line in self.details:
            click.echo(f"  {line}", file=file, err=err)
        if self.hint:
            click.echo(self.hint, file=file, err=err)
        if self.correlation_id:
            click.echo(f"(correlation id {self.correlation_id})", file=file, err=err)


class Unreachable(CliError):
    """The network failed us, not the API: streams reconnect on this one."""

    def __init__(self, url: str, cause: str, what: str = "the gpucloud API"):
        super().__init__(f"cannot reach {what} at {url} ({cause})")
        self.cause = cause


def problem(response: requests.Response) -> CliError:
    """An RFC 9457 problem document (or any error response) as a CliError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    detail = body.get("detail") or body.get("title") or f"HTTP {response.status_code} {response.reason}"
    details = [f"{clean(str(e.get('field')))}: {clean(str(e.get('message')))}"
               for e in body.get("errors") or [] if isinstance(e, dict)]
    hint = LOGIN_HINT if response.status_code == 401 else None
    cid = body.get("correlation_id") or response.headers.get("X-Correlation-ID")
    return CliError(clean(str(detail)), details, hint, cid)


# -- config and the HTTP client -----------------------------------------------------------------

def config_path() -> Path:
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "gpucloud" / "config.json"


def read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the config file {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def write_config(path: Path, data: dict) -> None:
    """Atomically, and 0600 from the first byte: the file holds a bearer token."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    path.chmod(0o600)


class Api:
    """requests with bearer auth; error responses become CliError, network trouble one Unreachable line."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "gpucloud-cli"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params):
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None):
        return self.call("POST", path, json=body if body is not None else {})

    def patch(self, path: str, body: dict):
        return self.call("PATCH", path, json=body)

    def delete(self, path: str):
        return self.call("DELETE", path)

    def call(self, method: str, path: str, **kwargs):
        response = self.send(method, path, timeout=TIMEOUT, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:  # something else answers at this URL
            raise CliError(f"{self.url} did not answer with JSON: is it the gpucloud API?") from None

    def stream(self, path: str, headers: dict) -> requests.Response:
        return self.send("GET", path, headers=headers, stream=True, timeout=STREAM_TIMEOUT)

    def send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Unreachable(self.url, reason(exc)) from None
        except requests.RequestException as exc:
            raise CliError(f"bad API URL {self.url!r}: {exc}") from None
        if response.status_code >= 400:
            raise problem(response)
        return response


def reason(exc: Exception) -> str:
    """A short cause for a network error; requests' own messages run to several lines of urllib3 repr."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    text = str(exc)
    for cause in ("Connection refused", "Name or service not known", "No route to host", "Connection reset"):
        if cause in text:
            return cause.lower()
    return type(exc).__name__


def connect() -> Api:
    config = read_config(config_path())
    url = os.environ.get(URL_ENV) or config.get("url")
    token = os.environ.get(TOKEN_ENV) or config.get("token")
    if not url:
        raise CliError("no API URL configured", hint="run `gpucloud login --url URL` (or set GPUCLOUD_API_URL)")
    if not token:
        raise CliError("not logged in", hint=LOGIN_HINT)
    return Api(url, token)


# -- output helpers -----------------------------------------------------------------------------

def clean(text: str) -> str:
    return CONTROL.sub("", text.replace("\r\n", "\n"))


def part(value: str) -> str:
    """One URL path segment: an id typed on the command line cannot reach another endpoint."""
    return quote(value, safe="")


def when(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


def seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def paint(text: str, key: str) -> str:
    """Colored by outcome; click.echo drops the color when the output is not a terminal."""
    return click.style(text, fg=COLORS.get(key), bold=key in ("failed", "unreachable"))


class Painted(str):
    """A table cell colored after padding, so escape codes never count towards column widths."""

    key: str

    def __new__(cls, text: str, key: str | None = None):
        cell = super().__new__(cls, text)
        cell.key = key or text
        return cell


def table(headers: list[str], rows: list[list], right: Iterable[int] = ()) -> str:
    cells = [[clean("-" if c is None else str(c)).replace("\n", " ") for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right, keys = set(right), [[getattr(c, "key", None) for c in row] for row in [headers, *rows]]
    lines = []
    for row, row_keys in zip(cells, keys, strict=True):
        parts = []
        for i, (cell, width, key) in enumerate(zip(row, widths, row_keys, strict=True)):
            pad = " " * (width - len(cell))
            text = paint(cell, key) if key else cell
            parts.append(pad + text if i in right else text + pad)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def stats_table(stats: dict | None) -> str:
    rows = [[host, *(counts.get(k, 0) for k in STATS)] for host, counts in sorted((stats or {}).items())]
    return table(["HOST", *(k.upper() for k in STATS)], rows, right=range(1, len(STATS) + 1))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def describe(who: dict) -> str:
    if who.get("tenant"):
        return f"{who['subject']} ({who['role']} of tenant {who['tenant']})"
    return f"{who['subject']} ({who['role']})"


def exit_with(code: int):
    click.get_current_context().exit(code)


# -- launch input -------------------------------------------------------------------------------

def parse_assignment(text: str) -> tuple[str, object]:
    """KEY=VALUE; the value is JSON when it parses (3, true, [1,2], "3"), else the plain string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="'-e'")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def load_vars_file(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="'--vars-file'") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a mapping of variable names to values",
                                 param_hint="'--vars-file'")
    return data


def split_hosts(values: Iterable[str]) -> list[str]:
    return [host.strip() for value in values for host in value.split(",") if host.strip()]


# -- events: SSE with resume, and their live display --------------------------------------------

class SseParser:
    """Server-sent events, one line at a time; `retry` follows what the server asks."""

    def __init__(self, retry: float = 2.0):
        self.retry = retry
        self._reset()

    def _reset(self) -> None:
        self.id, self.name, self.data = None, "message", []

    def feed(self, line: str) -> tuple[str | None, str, str] | None:
        """(id, event name, data) when a frame completes; comment lines come back as IDLE."""
        if not line:
            frame = (self.id, self.name, "\n".join(self.data)) if self.data else None
            self._reset()
            return frame
        if line.startswith(":"):
            return None, IDLE, ""
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self.data.append(value)
        elif field == "id":
            self.id = value
        elif field == "event":
            self.name = value
        elif field == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None


def response_lines(response: requests.Response) -> Iterator[str]:
    """Lines as they arrive (iter_lines buffers, and would split UTF-8 across chunks)."""
    decoder, buffer = codecs.getincrementaldecoder("utf-8")("replace"), ""
    for chunk in response.iter_content(chunk_size=None):
        buffer += decoder.decode(chunk)
        *lines, buffer = buffer.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    if buffer:
        yield buffer.rstrip("\r")


@dataclass
class StreamState:
    """What survives a dropped connection: where to resume, and how long the server asks us to wait."""

    last_id: str | None = None
    retry: float = 2.0
    opened: bool = False  # the current connection got a 200
    ever_opened: bool = False
    failures: int = 0  # consecutive connections that never opened


def stream_events(api: Api, job_id: str, last_id: str | None = None) -> Iterator[dict]:
    """The job's events until job_end, resuming from Last-Event-ID whenever the stream drops.

    Also yields IDLE markers (a keepalive, or a reconnect) so callers can look at a quiet job.
    A stream that opened and then broke is simply reopened; only connections that fail to open
    count towards giving up, so a long quiet job is followed however often its stream drops.
    """
    state = StreamState(last_id)
    while True:
        state.opened = False
        try:
            for event in sse_connection(api, job_id, state):
                yield event
                if event["event"] == END:
                    return
            # Closed without job_end: the job may have expired (404 raises) or its events been trimmed.
            job = api.get(f"/v1/jobs/{part(job_id)}")
            if job["status"] in FINISHED:
                yield {"event": END, "id": None, "status": job["status"], "reason": job["reason"],
                       "changed": job["changed"]}
                return
        except (Unreachable, requests.RequestException) as exc:
            if not state.ever_opened and isinstance(exc, Unreachable):
                raise  # never reached the API at all: say so now rather than after every retry
            state.failures = 0 if state.opened else state.failures + 1
            if state.failures > MAX_FAILURES:
                cause = exc.cause if isinstance(exc, Unreachable) else reason(exc)
                raise Unreachable(api.url, cause, f"the event stream of job {job_id}") from None
        time.sleep(state.retry if state.failures else 0.2)  # reopen a broken stream at once, else as asked
        yield {"event": IDLE, "id": None}


def sse_connection(api: Api, job_id: str, state: StreamState) -> Iterator[dict]:
    """One SSE connection's events, resuming after `state.last_id` and keeping it current."""
    headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": state.last_id} if state.last_id else {})
    parser = SseParser(state.retry)
    with api.stream(f"/v1/jobs/{part(job_id)}/events", headers) as response:
        state.opened = state.ever_opened = True
        state.failures = 0
        for line in response_lines(response):
            frame = parser.feed(line)
            state.retry = parser.retry
            if frame is None:
                continue
            event_id, name, data = frame
            if name == IDLE:
                yield {"event": IDLE, "id": None}
                continue
            state.last_id = event_id or state.last_id
            yield {"event": name, "id": event_id} | event_data(data)


def event_data(data: str) -> dict:
    try:
        event = json.loads(data)
    except ValueError:
        return {"data": data}
    return {k: v for k, v in event.items() if k not in ("event", "id")} if isinstance(event, dict) else {"data": event}


class LiveView:
    """Streamed task and host lines; on a terminal a progress bar stays on the last line."""

    def __init__(self, total: int | None, live: bool):
        self.total, self.live = total, live
        self.done, self.label = 0, ""

    def echo(self, text: str) -> None:
        self.clear()
        click.echo(text)
        self.draw()

    def clear(self) -> None:
        if self.live:
            click.echo("\r\x1b[K", nl=False)

    def draw(self) -> None:
        if self.live:
            width = shutil.get_terminal_size().columns - 1
            click.echo(self.bar()[:width], nl=False)

    def bar(self) -> str:
        if not self.total:
            return f"[{self.done} tasks] {self.label}"
        filled = min(self.done, self.total) * 30 // self.total
        return f"[{'#' * filled}{'.' * (30 - filled)}] {min(self.done, self.total)}/{self.total} {self.label}"

    def counter(self) -> str:
        return f"[{self.done}/{self.total}]" if self.total else f"[{self.done}]"

    def show(self, event: dict) -> None:
        name = event.get("event")
        if name == "job_start":
            self.echo(f"started on {event.get('nodes', 0)} node(s)")
        elif name == "playbook_on_play_start":
            self.echo(click.style(f"PLAY {clean(event.get('play', ''))}", bold=True))
        elif name == "playbook_on_task_start":
            self.done += 1
            self.label = clean(event.get("task", ""))
            role = f"{clean(event['role'])} : " if event.get("role") else ""
            self.echo(f"TASK {self.counter()} {role}{self.label}")
        elif name in RESULTS:
            self.result(event)

    def result(self, event: dict) -> None:
        outcome = "changed" if event["event"] == "runner_on_ok" and event.get("changed") else RESULTS[event["event"]]
        self.echo(f"  {paint(outcome, outcome)}: {clean(event.get('host', '?'))}")
        if outcome in ("failed", "unreachable") or str(event.get("task_action", "")).endswith("debug"):
            text = clean(event.get("stdout") or "")
            # A debug result's first line repeats "ok: [host] =>"; a failure's first line is its error.
            message = text.partition("\n")[2] if outcome in ("ok", "changed") else text
            for line in message.splitlines()[:40]:
                if line.strip():
                    self.echo(f"    {line.strip()}")


def task_count(api: Api, playbook: str) -> int | None:
    """The playbook's static task count for the progress bar; unknown rather than an error."""
    try:
        items = api.get("/v1/playbooks")["items"]
    except CliError:
        return None
    return next((p.get("tasks") for p in items if p.get("name") == playbook), None)


def watch(api: Api, job: dict, quiet: bool) -> dict:
    """Follows the job to its end; returns the job_end event."""
    view = LiveView(None if quiet else task_count(api, job["playbook"]), live=not quiet and sys.stdout.isatty())
    started, waiting = False, None
    try:
        for event in stream_events(api, job["id"]):
            if event["event"] == END:
                return event
            started = started or event["event"] == "job_start"
            if event["event"] == IDLE and not started and not quiet:
                waiting = note_waiting(api, job["id"], waiting, view)
            elif not quiet:
                view.show(event)
    except KeyboardInterrupt:
        view.clear()
        click.echo(f"\nstopped following; job {job['id']} goes on (gpucloud jobs cancel {job['id']} stops it)",
                   err=True)
        exit_with(130)
    finally:
        view.clear()
    raise CliError(f"the event stream of job {job['id']} ended without job_end")


def note_waiting(api: Api, job_id: str, shown: str | None, view: LiveView) -> str | None:
    """A queued job says why it waits; repeat it only when the reason changes. Best effort."""
    try:
        waiting = api.get(f"/v1/jobs/{part(job_id)}").get("waiting")
    except CliError:
        return shown
    if waiting and waiting != shown:
        view.echo(f"waiting: {clean(waiting)}")
    return waiting


def print_summary(job: dict) -> None:
    status = job["status"]
    click.echo(f"\njob {job['id']} {paint(status, status)} in {seconds(job.get('duration'))}, "
               f"changed {job.get('changed') or 0}")
    if job.get("reason"):
        click.echo(f"reason: {clean(job['reason'])}")
    if job.get("stats"):
        click.echo(stats_table(job["stats"]))


# -- commands -----------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """gpucloud: launch catalogued playbooks on your GPU nodes and watch them run."""


@cli.command()
@click.option("--url", envvar=URL_ENV, help="API base URL [env GPUCLOUD_API_URL, else the saved one].")
@click.option("--token", help="API token; prompted (hidden) when not given, which keeps it out of `ps`.")
def login(url, token):
    """Check a token against the API and save it with the URL (0600 config file)."""
    path = config_path()
    url = url or read_config(path).get("url")
    if not url:
        raise CliError("no API URL", hint="give --url or set GPUCLOUD_API_URL")
    token = (token or click.prompt("API token", hide_input=True)).strip()
    who = Api(url, token).get("/v1/whoami")
    write_config(path, {"url": url.rstrip("/"), "token": token})
    click.echo(f"logged in to {url.rstrip('/')} as {describe(who)}")


@cli.command()
def logout():
    """Forget the saved token (the URL stays)."""
    path = config_path()
    config = read_config(path)
    if "token" not in config:
        click.echo("not logged in")
        return
    del config["token"]
    write_config(path, config)
    click.echo(f"logged out: token removed from {path}")
    if os.environ.get(TOKEN_ENV):
        click.echo("note: GPUCLOUD_TOKEN is still set in this environment and still applies", err=True)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def whoami(as_json):
    """Who the current token belongs to."""
    api = connect()
    who = api.get("/v1/whoami")
    if as_json:
        print_json(who)
        return
    click.echo(f"{describe(who)} via {who.get('via')} at {api.url}")


@cli.group()
def playbooks():
    """The playbook catalogue."""


@playbooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def playbooks_list(as_json):
    """Catalogued playbooks, who may run them, and the variables each accepts."""
    items = connect().get("/v1/playbooks")["items"]
    if as_json:
        print_json(items)
        return
    click.echo(table(["NAME", "MIN ROLE", "TASKS", "TIMEOUT", "DESCRIPTION"],
                     [[p["name"], p["min_role"], p.get("tasks"), p.get("timeout"), p.get("description")]
                      for p in items]))
    for p in items:
        click.echo(f"\n{p['name']} variables (-e KEY=VALUE):")
        props = (p.get("variables") or {}).get("properties") or {}
        rows = [[name, spec.get("type", "any"), json.dumps(spec["default"]) if "default" in spec else "-",
                 spec.get("description", "")] for name, spec in props.items()]
        click.echo(table(["  NAME", "TYPE", "DEFAULT", "DESCRIPTION"], [[f"  {r[0]}", *r[1:]] for r in rows])
                   if rows else "  none")


@cli.group()
def jobs():
    """Launch, follow, list and cancel jobs."""


@jobs.command("run")
@click.argument("playbook")
@click.option("-e", "--extra-var", "extra", multiple=True, metavar="KEY=VALUE",
              help="A variable; VALUE is JSON when it parses (3, true, [..]), else a string. Repeatable.")
@click.option("--vars-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Variables from a .yml/.yaml/.json mapping; -e wins over it.")
@click.option("--limit", "hosts", multiple=True, metavar="HOST", help="Run on this node only (repeatable).")
@click.option("--timeout", type=click.IntRange(min=1), help="Seconds before the run is stopped.")
@click.option("--tenant", help="Tenant to run for (platform admins must give it).")
@click.option("--follow/--no-follow", default=True, help="Stream the events until the job ends (default).")
@click.option("--json", "as_json", is_flag=True, help="Print the job's JSON (the final record when following).")
def jobs_run(playbook, extra, vars_file, hosts, timeout, tenant, follow, as_json):
    """Launch PLAYBOOK and follow it live; exit 0 only if it succeeds."""
    variables = load_vars_file(vars_file) | dict(parse_assignment(e) for e in extra)
    body = {"playbook": playbook, "variables": variables, "limit": split_hosts(hosts)}
    body |= {k: v for k, v in (("timeout", timeout), ("tenant", tenant)) if v is not None}
    api = connect()
    job = api.post("/v1/jobs", body)
    if not as_json:
        click.echo(f"job {job['id']} {job['status']}: {job['playbook']} for {job['tenant']} on "
                   f"{len(job.get('nodes') or [])} node(s) (correlation id {job['correlation_id']})")
    if not follow:
        if as_json:
            print_json(job)
        else:
            click.echo(f"follow it with: gpucloud jobs logs {job['id']} --follow")
        return
    watch(api, job, quiet=as_json)
    final = api.get(f"/v1/jobs/{job['id']}")
    if as_json:
        print_json(final)
    else:
        print_summary(final)
    exit_with(0 if final["status"] == "successful" else 1)


@jobs.command("list")
@click.option("--status", type=click.Choice(["queued", "running", *FINISHED]))
@click.option("--playbook")
@click.option("--tenant", help="Platform admins: one tenant's jobs.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON page.")
def jobs_list(status, playbook, tenant, limit, offset, as_json):
    """Jobs, newest first."""
    page = connect().get("/v1/jobs", status=status, playbook=playbook, tenant=tenant, limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    rows = [[j["id"], j["tenant"], j["playbook"], Painted(j["status"]), when(j.get("created_at")),
             seconds(j.get("duration")), len(j.get("nodes") or [])] for j in page["items"]]
    click.echo(table(["ID", "TENANT", "PLAYBOOK", "STATUS", "CREATED", "DURATION", "NODES"], rows)
               if rows else "no jobs")
    if page.get("next_offset") is not None:
        click.echo(f"more: --offset {page['next_offset']}", err=True)


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def jobs_show(job_id, as_json):
    """One job: status, why it waits or ended, NetBox journal and per-host stats."""
    job = connect().get(f"/v1/jobs/{part(job_id)}")
    if as_json:
        print_json(job)
        return
    who = job.get("submitted_by") or {}
    fields = [
        ("job", job["id"]), ("playbook", job["playbook"]), ("tenant", job["tenant"]),
        ("status", job["status"]), ("waiting", job.get("waiting")),
        ("reason", job.get("reason")), ("submitted by", who and describe(who)),
        ("created", when(job.get("created_at"))), ("started", when(job.get("started_at"))),
        ("finished", when(job.get("finished_at"))), ("duration", seconds(job.get("duration"))),
        ("timeout", f"{job.get('timeout')}s"), ("nodes", ", ".join(job.get("nodes") or []) or "-"),
        ("variables", json.dumps(job.get("variables") or {})), ("changed", job.get("changed")),
        ("rc", job.get("rc")), ("worker", job.get("worker")), ("journal", job.get("journal")),
        ("correlation id", job.get("correlation_id")),
    ]
    for label, value in fields:
        if value not in (None, ""):
            text = clean(str(value))
            click.echo(f"{label + ':':16}{paint(text, text) if label == 'status' else text}")
    if job.get("stats"):
        click.echo("\n" + stats_table(job["stats"]))


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id):
    """Cancel a queued or running job."""
    job = connect().post(f"/v1/jobs/{part(job_id)}/cancel")
    if job["status"] == "canceled":
        click.echo(f"job {job_id} canceled")
    else:
        click.echo(f"job {job_id} is {job['status']}: cancel requested, it stops within a few seconds")


@jobs.command("logs")
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming until the job ends.")
def jobs_logs(job_id, follow):
    """Ansible's output of a job."""
    api = connect()
    if follow:
        end = {}
        for event in stream_events(api, job_id):
            print_stdout(event)
            end = event
        click.echo(f"job {job_id} {paint(end.get('status', '?'), end.get('status', '?'))}", err=True)
        return
    after = None
    while True:
        page = api.get(f"/v1/jobs/{part(job_id)}/events", after=after, limit=1000)
        for event in page["items"]:
            print_stdout(event)
        if page["finished"] or not page["items"]:
            break
        after = page["items"][-1]["id"]
    if not page["finished"]:
        click.echo(f"(job {job_id} has not finished; --follow streams the rest)", err=True)


def print_stdout(event: dict) -> None:
    text = clean(event.get("stdout") or "")
    if text:
        click.echo(text)


@cli.group()
def admin():
    """Platform and tenant administration."""


@admin.group()
def tenants():
    """Tenants onboarded to the runner."""


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def tenants_list(as_json):
    """Tenants you can see."""
    items = connect().get("/v1/tenants")["items"]
    if as_json:
        print_json(items)
        return
    click.echo(table(["SLUG", "CONCURRENCY", "OIDC ISSUER", "CREATED"],
                     [[t["slug"], t["concurrency"], (t.get("oidc") or {}).get("issuer"), when(t.get("created_at"))]
                      for t in items]))


@tenants.command("create")
@click.argument("slug")
@click.option("--concurrency", type=click.IntRange(1, 1000), help="Jobs the tenant may run at once.")
def tenants_create(slug, concurrency):
    """Onboard the NetBox tenant SLUG."""
    body = {"slug": slug} | ({"concurrency": concurrency} if concurrency else {})
    tenant = connect().post("/v1/tenants", body)
    click.echo(f"tenant {tenant['slug']} onboarded, concurrency {tenant['concurrency']}")


@tenants.command("set")
@click.argument("slug")
@click.option("--concurrency", type=click.IntRange(1, 1000), required=True, help="Jobs the tenant may run at once.")
def tenants_set(slug, concurrency):
    """Change a tenant's concurrency limit."""
    tenant = connect().patch(f"/v1/tenants/{part(slug)}", {"concurrency": concurrency})
    click.echo(f"tenant {tenant['slug']}: concurrency {tenant['concurrency']}")


@admin.group()
def tokens():
    """API tokens."""


@tokens.command("issue")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--tenant", help="Tenant the token belongs to (tenant roles).")
@click.option("--description", default="", help="What the token is for.")
def tokens_issue(role, tenant, description):
    """Issue a token. Only the secret goes to stdout, and this is the only time it is shown."""
    body = {"role": role, "description": description} | ({"tenant": tenant} if tenant else {})
    issued = connect().post("/v1/tokens", body)
    owner = f" of tenant {issued['tenant']}" if issued.get("tenant") else ""
    click.echo(f"issued token {issued['id']} ({issued['role']}{owner}); the secret is shown only now:", err=True)
    click.echo(issued["token"])


@tokens.command("list")
@click.option("--tenant", help="Platform admins: one tenant's tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def tokens_list(tenant, as_json):
    """Tokens you administer (never their secrets)."""
    items = connect().get("/v1/tokens", tenant=tenant)["items"]
    if as_json:
        print_json(items)
        return
    click.echo(table(["ID", "ROLE", "TENANT", "CREATED", "CREATED BY", "DESCRIPTION"],
                     [[t["id"], t["role"], t.get("tenant"), when(t.get("created_at")), t.get("created_by"),
                       t.get("description")] for t in items]))


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id):
    """Revoke a token by its id (the part after `gpc_`)."""
    connect().delete(f"/v1/tokens/{part(token_id)}")
    click.echo(f"token {token_id} revoked")


@admin.command("audit")
@click.option("--tenant")
@click.option("--action", help="e.g. job.submit, job.cancel, token.issue, tenant.update")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--after", help="Page on: the last id of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON page.")
def audit(tenant, action, limit, after, as_json):
    """The audit trail, newest first (platform admins)."""
    page = connect().get("/v1/audit", tenant=tenant, action=action, limit=limit, after=after)
    if as_json:
        print_json(page)
        return
    rows = [[when(r.get("time")), r.get("who"), r.get("role"), r.get("tenant"), r.get("action"), r.get("target"),
             r.get("status"), r.get("correlation_id")] for r in page["items"]]
    click.echo(table(["TIME", "WHO", "ROLE", "TENANT", "ACTION", "TARGET", "STATUS", "CORRELATION ID"], rows)
               if rows else "no records")
    if page.get("next_after"):
        click.echo(f"more: --after {page['next_after']}", err=True)


@admin.command("bootstrap-token")
@click.option("--description", default="bootstrap (gpucloud cli)", show_default=True)
def bootstrap_token(description):
    """First platform-admin token, minted straight in Redis (needs GPUCLOUD_REDIS_URL, no API token)."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        raise CliError("GPUCLOUD_REDIS_URL is not set", hint="point it at the runner's Redis, e.g. redis://host:6379/2")
    import redis  # the runner's own modules: only this command needs them and their Redis client

    from runner_api.principal import Role
    from runner_api.store import Store
    from runner_api.tokens import TokenStore

    try:
        token, record = TokenStore(Store(url).redis).issue(Role.PLATFORM_ADMIN, None, description, "cli bootstrap")
    except redis.RedisError as exc:
        raise CliError(f"cannot mint a token in Redis at {redact(url)}: {exc}") from None
    click.echo(f"issued platform-admin token {record.id}; the secret is shown only now:", err=True)
    click.echo(token)


def redact(url: str) -> str:
    """A Redis URL without its password."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def main() -> None:
    cli(prog_name="gpucloud")


if __name__ == "__main__":
    main()
