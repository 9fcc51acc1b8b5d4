# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Declarative, bulk reconciliation of NetBox objects: read, compare, act.

A *collection* is {"endpoint": "dcim/device-roles", "key": ["slug"], "objects": [...]}. Each
desired object is compared with the existing one found by its key, field by field, in the
shape the REST API writes (related objects by attributes, e.g. {"slug": "nvidia"}). Missing
objects are created and differing ones patched, one bulk call per collection, in the order
given so that later collections may refer to earlier ones.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def lookup(obj, dotted: str):
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def object_key(obj: dict, key: list[str]) -> tuple:
    return tuple(_scalar(lookup(obj, k)) for k in key)


def _scalar(value):
    if isinstance(value, dict) and "value" in value and "label" in value:
        return value["value"]
    return value


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def same(want, have) -> bool:
    """Does the current value `have` already satisfy the desired `want`?

    Related objects match on the attributes `want` names; choice fields match on their value;
    custom_fields match on the fields `want` sets; lists match regardless of order; numbers
    match across int/float/decimal-string representations.
    """
    have = _scalar(have)
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(same(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return sorted(map(_canonical, want)) == sorted(map(_canonical, have))
    if want is None or have is None:
        return want == have
    if isinstance(want, bool) or isinstance(have, bool):
        return type(want) is type(have) and want == have
    w, h = _number(want), _number(have)
    if w is not None and h is not None and not isinstance(want, str):
        return w == h
    return want == have


def _canonical(value) -> str:
    if isinstance(value, dict):
        return repr(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return repr([_canonical(v) for v in value])
    return repr(_scalar(value))


def field_changes(want: dict, have: dict) -> dict:
    return {name: value for name, value in want.items() if not same(value, have.get(name))}


def plan_collection(existing: list[dict], spec: dict) -> dict:
    """Split a collection's desired objects into create / update / unchanged."""
    key = spec["key"]
    by_key = {object_key(obj, key): obj for obj in existing}
    create, update, unchanged, diff_before, diff_after = [], [], 0, [], []
    for want in spec["objects"]:
        have = by_key.get(object_key(want, key))
        if have is None:
            create.append(want)
            diff_after.append(want)
            continue
        changes = field_changes(want, have)
        if not changes:
            unchanged += 1
            continue
        update.append({"id": have["id"], **changes})
        label = "/".join(str(k) for k in object_key(want, key))
        diff_before.append({label: {name: _scalar(have.get(name)) for name in changes}})
        diff_after.append({label: changes})
    return {"create": create, "update": update, "unchanged": unchanged,
            "diff": {"before": diff_before, "after": diff_after}}


def validate(collections: list[dict]) -> list[str]:
    """Every problem with the collections' shape, reported at once."""
    errors = []
    for i, spec in enumerate(collections):
        where = f"collections[{i}]"
        if not isinstance(spec, dict):
            errors.append(f"{where}: expected a mapping with endpoint, key and objects")
            continue
        endpoint, key, objects = spec.get("endpoint"), spec.get("key"), spec.get("objects")
        if not isinstance(endpoint, str) or endpoint.count("/") != 1:
            errors.append(f"{where}.endpoint: expected '<app>/<model>', e.g. 'dcim/device-roles', got {endpoint!r}")
        if not (isinstance(key, list) and key and all(isinstance(k, str) for k in key)):
            errors.append(f"{where}.key: expected a non-empty list of field names, got {key!r}")
            continue
        if not isinstance(objects, list):
            errors.append(f"{where}.objects: expected a list, got {type(objects).__name__}")
            continue
        seen = set()
        for j, obj in enumerate(objects):
            if not isinstance(obj, dict):
                errors.append(f"{where}.objects[{j}]: expected a mapping, got {type(obj).__name__}")
                continue
            ident = object_key(obj, key)
            if None in ident:
                errors.append(f"{where}.objects[{j}]: missing key field(s) {key}")
            elif ident in seen:
                errors.append(f"{where}.objects[{j}]: duplicate key {ident}")
            seen.add(ident)
    return errors


def reconcile(nb, collections: list[dict], check_mode: bool = False) -> dict:
    """Apply the collections in order; returns per-endpoint counts and a before/after diff."""
    summary, before, after = {}, {}, {}
    for spec in collections:
        plan = plan_collection(nb.list(spec["endpoint"]), spec)
        if not check_mode:
            if plan["create"]:
                nb.create(spec["endpoint"], plan["create"])
            if plan["update"]:
                nb.update(spec["endpoint"], plan["update"])
        summary[spec["endpoint"]] = {"created": len(plan["create"]), "updated": len(plan["update"]),
                                     "unchanged": plan["unchanged"]}
        if plan["diff"]["before"] or plan["diff"]["after"]:
            before[spec["endpoint"]] = plan["diff"]["before"]
            after[spec["endpoint"]] = plan["diff"]["after"]
    return {"summary": summary, "diff": {"before": before, "after": after}}
