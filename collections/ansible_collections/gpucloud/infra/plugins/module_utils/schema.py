# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""JSON-schema helpers the structured-config builders share (fabric, Slurm, Kubernetes).

`errors(instance, schema)` reports every violation at once as "path: message", the path written like
"nodes[3].gpu.count" so an operator finds the field without reading a traceback.
"""

from __future__ import annotations

import re

import jsonschema


def obj(required: list[str], properties: dict, optional: dict | None = None) -> dict:
    """A closed object: the required keys, plus optional ones, nothing else."""
    return {"type": "object", "additionalProperties": False, "required": required,
            "properties": {**properties, **(optional or {})}}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def path_text(path) -> str:
    """["leaf1", "vlans", 3, "l2vni"] -> "leaf1.vlans[3].l2vni"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def expected(schema: dict, words: str) -> dict:
    """The schema, saying `words` (e.g. "a path starting with /") instead of its pattern when a value fails it."""
    return {**schema, "x-expected": words}


def _message(error) -> str:
    words = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    if words and error.validator in ("pattern", "maxLength", "minLength"):
        return f"expected {words}, got {error.instance!r}"
    return error.message


def errors(instance, schema: dict, root: str = "") -> list[str]:
    """Every schema violation, sorted by path, as "path: message"."""
    validator = jsonschema.Draft202012Validator(schema)
    found = []
    for error in validator.iter_errors(instance):
        path = ([root] if root else []) + list(error.absolute_path)
        found.append(([(0, p) if isinstance(p, int) else (1, str(p)) for p in path], path_text(path), _message(error)))
    return [f"{path}: {message}" for _key, path, message in sorted(found)]


def named(found: list[str], items, key: str = "nodes") -> list[str]:
    """nodes[3].cpus -> nodes[3] (gpu-n04).cpus: an operator looks an entry up by its name."""
    names = {i: n.get("name") for i, n in enumerate(items if isinstance(items, list) else []) if isinstance(n, dict)}
    return [re.sub(rf"^{key}\[(\d+)\]", lambda m: f"{m.group(0)} ({names.get(int(m.group(1)))})"
                   if names.get(int(m.group(1))) else m.group(0), e) for e in found]
