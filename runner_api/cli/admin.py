"""`gpucloud admin`: tenants, API tokens, the audit trail, and the first platform-admin token."""

import os
import re

import click

from runner_api.cli.client import CliError, part
from runner_api.cli.config import connect
from runner_api.cli.output import print_json, table, when

REDIS_ENV = "GPUCLOUD_REDIS_URL"
ROLES = ("platform-admin", "tenant-admin", "tenant-operator", "tenant-viewer")


@click.group()
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
