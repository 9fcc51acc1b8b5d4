"""`gpucloud`: the command-line client of the runner API.

Log in once (`gpucloud login`), then launch catalogued playbooks and watch them live, list, inspect
and cancel jobs, and, as a platform admin, manage tenants, tokens and the audit trail. The URL and
token live in a 0600 config file; GPUCLOUD_API_URL and GPUCLOUD_TOKEN override it for every command.
Exit codes: 0 success, 1 a job that did not succeed, 2 an error (API, network, usage).

One module per concern: `config` (login state), `client` (HTTP and errors), `stream` (SSE with resume),
`live` (the live view of `jobs run`), `output` (tables, colours), and one module per command group.
"""

import click

from runner_api.cli.admin import admin
from runner_api.cli.clusters import alerts, clusters, cost, quota
from runner_api.cli.jobs import jobs
from runner_api.cli.playbooks import playbooks
from runner_api.cli.projects import projects
from runner_api.cli.session import login, logout, whoami
from runner_api.cli.tenants import offboard, onboard, onboarding
from runner_api.cli.users import accept, users

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """gpucloud: launch catalogued playbooks on your GPU nodes and watch them run."""


for command in (login, logout, whoami, playbooks, jobs, clusters, quota, alerts, cost, admin, onboard, onboarding,
                offboard, users, projects, accept):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="gpucloud")
