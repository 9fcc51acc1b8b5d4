"""`gpucloud jobs`: launch a playbook and follow it, list, show, cancel, and read a job's output."""

import json
from collections.abc import Iterable
from pathlib import Path

import click
import yaml

from runner_api.cli.client import part
from runner_api.cli.config import connect
from runner_api.cli.live import print_summary, watch
from runner_api.cli.output import (
    Painted,
    clean,
    describe,
    exit_with,
    paint,
    print_json,
    seconds,
    stats_table,
    table,
    when,
)
from runner_api.cli.stream import FINISHED, stream_events

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


# -- commands -----------------------------------------------------------------------------------

@click.group()
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
