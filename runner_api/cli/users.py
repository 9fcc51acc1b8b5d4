"""`gpucloud users` (a tenant's users, for its admins) and `gpucloud accept` (log in with an invitation code)."""

import click

from runner_api.cli.client import Api, CliError, part
from runner_api.cli.config import URL_ENV, config_path, connect, read_config, write_config
from runner_api.cli.output import describe, print_json, table, when

ROLES = ("tenant-admin", "tenant-operator", "tenant-viewer")
TENANT_HELP = "The tenant (default: your token's; platform admins must give it)."


def tenant_of(api: Api, tenant: str | None) -> str:
    if tenant:
        return tenant
    mine = api.get("/v1/whoami").get("tenant")
    if not mine:
        raise CliError("which tenant?", hint="give --tenant SLUG")
    return mine


def projects_of(projects: tuple[str, ...], all_projects: bool) -> dict:
    if all_projects and projects:
        raise CliError("give --project or --all-projects, not both")
    if all_projects:
        return {"projects": None}
    return {"projects": list(projects)} if projects else {}


@click.group()
def users():
    """A tenant's users: invited with a role and projects, removed with their tokens."""


@users.command("list")
@click.option("--tenant", help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def users_list(tenant, as_json):
    """The tenant's users."""
    api = connect()
    items = api.get(f"/v1/tenants/{part(tenant_of(api, tenant))}/users")["items"]
    if as_json:
        print_json(items)
        return
    click.echo(table(["EMAIL", "ROLE", "PROJECTS", "STATUS", "INVITED", "ACCEPTED"],
                     [[u["email"], u["role"], "all" if u["projects"] is None else ",".join(u["projects"]) or "none",
                       u["status"], when(u.get("created_at")), when(u.get("accepted_at"))] for u in items]))


@users.command("invite")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), help="Default: the tenant's default role.")
@click.option("--project", "projects", multiple=True, help="A project the user may use (repeat); default: all.")
@click.option("--tenant", help=TENANT_HELP)
def users_invite(email, role, projects, tenant):
    """Invite EMAIL. Only the invitation code goes to stdout, and this is the only time it is shown."""
    api = connect()
    body = {"email": email} | ({"role": role} if role else {}) | projects_of(projects, False)
    user = api.post(f"/v1/tenants/{part(tenant_of(api, tenant))}/users", body)
    click.echo(f"invited {user['email']} as {user['role']}, valid until {when(user['invitation']['expires_at'])}; "
               "the code is shown only now (`gpucloud accept CODE --url URL`):", err=True)
    click.echo(user["invitation"]["code"])


@users.command("set")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES))
@click.option("--project", "projects", multiple=True, help="The projects the user may use (repeat).")
@click.option("--all-projects", is_flag=True, help="The user may use every project.")
@click.option("--tenant", help=TENANT_HELP)
def users_set(email, role, projects, all_projects, tenant):
    """Change a user's role or projects; their tokens follow."""
    body = ({"role": role} if role else {}) | projects_of(projects, all_projects)
    if not body:
        raise CliError("nothing to change", hint="give --role, --project or --all-projects")
    api = connect()
    user = api.patch(f"/v1/tenants/{part(tenant_of(api, tenant))}/users/{part(email)}", body)
    click.echo(f"{user['email']}: {user['role']}, projects "
               f"{'all' if user['projects'] is None else ', '.join(user['projects']) or 'none'}")


@users.command("remove")
@click.argument("email")
@click.option("--tenant", help=TENANT_HELP)
def users_remove(email, tenant):
    """Remove a user; their invitation and tokens are revoked."""
    api = connect()
    api.delete(f"/v1/tenants/{part(tenant_of(api, tenant))}/users/{part(email)}")
    click.echo(f"user {email} removed, their tokens revoked")


@click.command()
@click.argument("code")
@click.option("--url", envvar=URL_ENV, help="API base URL [env GPUCLOUD_API_URL, else the saved one].")
def accept(code, url):
    """Accept an invitation: exchange CODE for a token and log in with it (saved like `gpucloud login`)."""
    path = config_path()
    url = (url or read_config(path).get("url") or "").rstrip("/")
    if not url:
        raise CliError("no API URL", hint="give --url or set GPUCLOUD_API_URL")
    issued = Api(url).post("/v1/invitations/accept", {"code": code.strip()})
    who = Api(url, issued["token"]).get("/v1/whoami")
    write_config(path, {"url": url, "token": issued["token"]})
    click.echo(f"logged in to {url} as {describe(who)}")
