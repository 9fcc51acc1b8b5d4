# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Journal entries on NetBox objects (devices by default): validation and one bulk POST per 500 entries."""

from __future__ import annotations

KINDS = ("info", "success", "warning", "danger")
ENDPOINT = "extras/journal-entries"
MAX_COMMENTS = 60000


def normalize(entries: list[dict], default_kind: str = "info",
              default_type: str = "dcim.device") -> tuple[list[dict], list[str]]:
    """The NetBox payloads for `entries`, and every problem found (all at once)."""
    payloads, errors = [], []
    for index, entry in enumerate(entries):
        object_id = entry.get("device_id") if entry.get("device_id") is not None else entry.get("object_id")
        kind = entry.get("kind") or default_kind
        comments = entry.get("comments")
        where = f"entry {index}"
        try:
            object_id = int(object_id)
            if object_id <= 0:
                raise ValueError
        except (TypeError, ValueError):
            errors.append(f"{where}: device_id (or object_id) must be a positive integer, got {object_id!r}")
        if kind not in KINDS:
            errors.append(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not isinstance(comments, str) or not comments.strip():
            errors.append(f"{where}: comments must be a non-empty string")
        elif len(comments) > MAX_COMMENTS:
            errors.append(f"{where}: comments longer than {MAX_COMMENTS} characters")
        payloads.append({"assigned_object_type": entry.get("object_type") or default_type,
                         "assigned_object_id": object_id, "kind": kind, "comments": comments})
    return payloads, errors


def write(nb, payloads: list[dict]) -> list[dict]:
    """Create the entries (bulk); returns [{id, assigned_object_id, kind}] in request order."""
    if not payloads:
        return []
    created = nb.create(ENDPOINT, payloads)
    return [{"id": c.get("id"), "assigned_object_type": c.get("assigned_object_type"),
             "assigned_object_id": c.get("assigned_object_id"),
             "kind": (c.get("kind") or {}).get("value") if isinstance(c.get("kind"), dict) else c.get("kind")}
            for c in created]
