"""`gpucloud playbooks`: the catalogue of playbooks a tenant may launch, and their variables."""

import json

import click

from runner_api.cli.config import connect
from runner_api.cli.output import print_json, table


@click.group()
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
