"""`gpucloud login`, `logout` and `whoami`: the saved token, and who it belongs to."""

import os

import click

from runner_api.cli.client import Api, CliError
from runner_api.cli.config import TOKEN_ENV, URL_ENV, config_path, connect, read_config, write_config
from runner_api.cli.output import describe, print_json


@click.command()
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


@click.command()
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def whoami(as_json):
    """Who the current token belongs to."""
    api = connect()
    who = api.get("/v1/whoami")
    if as_json:
        print_json(who)
        return
    click.echo(f"{describe(who)} via {who.get('via')} at {api.url}")
