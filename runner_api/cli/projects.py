"""`gpucloud projects`: a tenant's projects and their quotas."""

import click

from runner_api.cli.client import CliError, part
from runner_api.cli.config import connect
from runner_api.cli.output import print_json, table
from runner_api.cli.users import TENANT_HELP, tenant_of

RESOURCES = ("gpus", "cpus", "memory_gb", "storage_tb")


def quota_options(command):
    for option in reversed([
        click.option("--gpus", type=click.IntRange(0)),
        click.option("--gpus-by-model", "by_model", multiple=True, metavar="MODEL=N", help="Repeat per model."),
        click.option("--cpus", type=click.IntRange(0)),
        click.option("--memory-gb", type=click.IntRange(0)),
        click.option("--storage-tb", type=click.FloatRange(0)),
        click.option("--description"),
    ]):
        command = option(command)
    return command


def spec(description, gpus, by_model, cpus, memory_gb, storage_tb) -> dict:
    quota = {k: v for k, v in (("gpus", gpus), ("cpus", cpus), ("memory_gb", memory_gb),
                                ("storage_tb", storage_tb)) if v is not None}
    models = {}
    for item in by_model:
        model, _, count = item.partition("=")
        if not model or not count.isdigit():
            raise CliError(f"--gpus-by-model {item!r}: expected MODEL=N")
        models[model] = int(count)
    if models:
        quota["gpus_by_model"] = models
    return ({"description": description} if description is not None else {}) | ({"quota": quota} if quota else {})


def quota_text(quota: dict) -> str:
    parts = [f"{k}={quota[k]}" for k in RESOURCES if quota.get(k) is not None]
    parts += [f"{m}={n}" for m, n in sorted((quota.get("gpus_by_model") or {}).items())]
    return " ".join(parts) or "tenant's"


@click.group()
def projects():
    """A tenant's projects and their quotas (at most the tenant's)."""


@projects.command("list")
@click.option("--tenant", help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def projects_list(tenant, as_json):
    """The projects you may use, with their quotas."""
    api = connect()
    page = api.get(f"/v1/tenants/{part(tenant_of(api, tenant))}/projects")
    if as_json:
        print_json(page)
        return
    click.echo(table(["PROJECT", "QUOTA", "DESCRIPTION"],
                     [[p["name"], quota_text(p.get("quota") or {}), p.get("description")] for p in page["items"]]))
    click.echo(f"tenant quota: {quota_text(page.get('tenant_quota') or {})}", err=True)


@projects.command("create")
@click.argument("name")
@quota_options
@click.option("--tenant", help=TENANT_HELP)
def projects_create(name, tenant, **options):
    """Create project NAME."""
    api = connect()
    project = api.post(f"/v1/tenants/{part(tenant_of(api, tenant))}/projects", {"name": name} | spec(**options))
    click.echo(f"project {project['name']} created, quota {quota_text(project['quota'])}")


@projects.command("set")
@click.argument("name")
@quota_options
@click.option("--tenant", help=TENANT_HELP)
def projects_set(name, tenant, **options):
    """Change a project's description or quota (a quota given replaces the project's)."""
    body = spec(**options)
    if not body:
        raise CliError("nothing to change", hint="give --description or a quota option")
    api = connect()
    project = api.patch(f"/v1/tenants/{part(tenant_of(api, tenant))}/projects/{part(name)}", body)
    click.echo(f"project {project['name']}: quota {quota_text(project['quota'])}")


@projects.command("delete")
@click.argument("name")
@click.option("--tenant", help=TENANT_HELP)
def projects_delete(name, tenant):
    """Delete project NAME (refused while nodes are booked to it)."""
    api = connect()
    api.delete(f"/v1/tenants/{part(tenant_of(api, tenant))}/projects/{part(name)}")
    click.echo(f"project {name} deleted")
