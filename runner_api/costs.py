"""Cost: each server's hourly price comes from NetBox (custom field hourly_cost, device over type).

An estimate prices a placement before it is committed; running cost adds up what a tenant (and each
of its projects) holds now, with what it has accrued since its clusters were reserved. The
GPUCLOUD_COST setting turns all of it off: responses then carry no cost at all.
"""

import time

DEFAULT_HOURS = (1, 24, 24 * 30)


def _money(value: float) -> float:
    return round(value, 2)


def hourly(nodes) -> float:
    return sum(node.hourly_cost for node in nodes)


def estimate(nodes, currency: str) -> dict:
    rate = hourly(nodes)
    per_model: dict[str, float] = {}
    for node in nodes:
        per_model[node.model] = per_model.get(node.model, 0.0) + node.hourly_cost
    return {"currency": currency, "hourly": _money(rate),
            "per_model_hourly": {m: _money(v) for m, v in sorted(per_model.items())},
            "projection": {f"{h}h": _money(rate * h) for h in DEFAULT_HOURS}}


def running(held, clusters: list[dict], currency: str, now: float | None = None) -> dict:
    """What a tenant's nodes cost per hour now, by project, and what its live clusters have accrued."""
    now = now or time.time()
    by_project: dict[str, float] = {}
    for h in held:
        key = h.project or "(none)"
        by_project[key] = by_project.get(key, 0.0) + h.node.hourly_cost
    accrued = sum(c.get("hourly_cost", 0.0) * max(now - c["created_at"], 0) / 3600 for c in clusters)
    return {"currency": currency, "hourly": _money(sum(by_project.values())),
            "hourly_by_project": {p: _money(v) for p, v in sorted(by_project.items())},
            "accrued_by_clusters": _money(accrued)}
