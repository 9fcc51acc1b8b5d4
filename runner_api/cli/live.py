"""The live view of `gpucloud jobs run`: task and host lines, a progress bar, why a job waits, its summary."""

import shutil
import sys

import click

from runner_api.cli.client import Api, CliError, part
from runner_api.cli.output import clean, exit_with, paint, seconds, stats_table
from runner_api.cli.stream import END, IDLE, stream_events

RESULTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_skipped": "skipping",
           "runner_on_unreachable": "unreachable"}


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
