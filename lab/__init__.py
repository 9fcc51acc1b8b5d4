"""The emulated gpucloud lab: the local service stack (PostgreSQL, Redis, NetBox) and a demo fleet.

Nothing in here is needed against a real NetBox; it exists so that the demo and the tests run
against real services on one machine.
"""

import sys
from pathlib import Path

# The lab talks to NetBox through the collection's own client (module_utils), the same code the
# modules run; make the collection importable without going through Ansible's loader.
_COLLECTIONS = str(Path(__file__).resolve().parent.parent / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
