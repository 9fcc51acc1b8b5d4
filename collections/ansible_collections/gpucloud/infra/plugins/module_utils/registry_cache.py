# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""BIOS AttributeRegistries cached on the controller, shared by every host of a run and across runs.

A registry is the same for every server of one model and BIOS version, and fetching it costs three
requests (and TLS handshakes, on both sides) per BMC. Entries are keyed by registry name, vendor,
model and BIOS version, and written atomically; a corrupt entry is fetched again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from ansible_collections.gpucloud.infra.plugins.module_utils.redfish import Redfish

CACHE_DIR = Path(os.environ.get("GPUCLOUD_REDFISH_CACHE", Path.home() / ".cache" / "gpucloud" / "redfish-registries"))


def key(bios: dict, system: dict) -> str | None:
    name = bios.get("AttributeRegistry")
    if not name:
        return None
    parts = (name, system.get("Manufacturer") or "", system.get("Model") or "", system.get("BiosVersion") or "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "@".join(parts))[:200]


def registry(client: Redfish, bios: dict, system: dict) -> dict | None:
    entry = key(bios, system)
    if entry is None:
        return None
    path = CACHE_DIR / f"{entry}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    fetched = client.registry(bios)
    if fetched is not None:
        _write(path, fetched)
    return fetched


def _write(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next run the same three requests
