"""`python -m runner_api.cli`: the same as the `gpucloud` command."""

from runner_api.cli import main

main()
