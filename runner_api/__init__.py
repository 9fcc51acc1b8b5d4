"""gpucloud's tenant job runner: an HTTP API, fair per-tenant RQ queues and ansible-runner workers."""

import sys
from pathlib import Path

# The runner reads NetBox through the collection's own client (module_utils), the same code the
# inventory plugin runs; make the collection importable without Ansible's loader.
_COLLECTIONS = str(Path(__file__).resolve().parent.parent / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

__all__ = ["create_app"]


def __getattr__(name):
    """create_app on first use: the CLI and the workers import this package without Flask's cost."""
    if name == "create_app":
        from runner_api.app import create_app

        return create_app
    raise AttributeError(name)
