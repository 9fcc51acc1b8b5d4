"""`gpucloud onboard`, `offboard` and `onboarding`: a tenant's onboarding, step by step (platform admins)."""

import json
import time
from pathlib import Path

import click
import yaml

from runner_api.cli.client import CliError, part
from runner_api.cli.config import connect
from runner_api.cli.output import Painted, exit_with, print_json, table, when

WAIT_SECONDS = 5
STATUS_COLORS = {"done": "successful", "ready": "successful", "offboarded": "successful", "failed": "failed",
                 "waiting": "queued", "running": "running", "pending": "queued", "skipped": "skipping"}


def load_request(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text()) if path != "-" else yaml.safe_load(click.get_text_stream("stdin"))
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read the onboarding request {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected a mapping (slug, admin, quota, networks, projects, users, ...)")
    return data


def status(text: str) -> Painted:
    return Painted(text, STATUS_COLORS.get(text, text))


def show(flow: dict) -> None:
    """The steps as a table, then the flow's outcome; the exit status says whether it is done."""
    rows = [[s["name"], status(s["status"]), "yes" if s.get("changed") else "no", when(s.get("finished_at")),
             s.get("error") or s.get("message") or ""] for s in flow["steps"]]
    click.echo(table(["STEP", "STATUS", "CHANGED", "FINISHED", "NOTE"], rows))
    for step in flow["steps"]:
        for error in step.get("errors") or []:
            click.echo(f"  {step['name']}: {error.get('field')}: {error.get('message')}", err=True)
    click.echo(f"{flow['flow']} of tenant {flow['tenant']}: {flow['status']}", err=True)


def finish(flow: dict) -> None:
    if flow["status"] == "failed":
        click.echo("fix what the failed step says and run the same command again: finished steps are kept",
                   err=True)
        exit_with(1)


@click.command()
@click.option("-f", "--file", "path", required=True, help="The onboarding request (YAML or JSON; - for stdin).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON (invitation codes included).")
def onboard(path, as_json):
    """Onboard a tenant, or resume or update its onboarding with the same request.

    The codes of the users it invites are printed only now: hand each to its user (`gpucloud accept CODE`)."""
    flow = connect().post("/v1/onboardings", load_request(path))
    if as_json:
        print_json(flow)
        finish(flow)
        return
    show(flow)
    for invitation in flow.get("invitations") or []:
        click.echo(f"invitation for {invitation['email']} ({invitation['role']}), valid until "
                   f"{when(invitation['expires_at'])}; shown only now:", err=True)
        click.echo(invitation["code"])
    finish(flow)


@click.command()
@click.argument("slug")
@click.option("--wait/--no-wait", default=False, help="Call again until the tenant's clusters are released.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def offboard(slug, wait, as_json):
    """Offboard tenant SLUG: clusters, users, tokens, projects and networks go back to the pools."""
    api = connect()
    flow = api.post(f"/v1/offboardings/{part(slug)}")
    while wait and flow["status"] == "waiting":
        click.echo(next((s["message"] for s in flow["steps"] if s["status"] == "waiting"), "waiting"), err=True)
        time.sleep(WAIT_SECONDS)
        flow = api.post(f"/v1/offboardings/{part(slug)}")
    if as_json:
        print_json(flow)
    else:
        show(flow)
        if flow["status"] == "waiting":
            click.echo(f"run `gpucloud offboard {slug}` again (or add --wait) once the clusters are released",
                       err=True)
    finish(flow)


@click.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def onboarding(slug, as_json):
    """Where tenant SLUG's onboarding (or offboarding) stands, step by step."""
    flow = connect().get(f"/v1/onboardings/{part(slug)}")
    if as_json:
        click.echo(json.dumps(flow, indent=2))
        return
    show(flow)
