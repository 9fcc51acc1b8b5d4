"""The audit trail: every state-changing call, as a capped Redis stream platform admins can query."""

import json
import time

from redis.exceptions import ResponseError

from runner_api import store

MAX_RECORDS = 1_000_000


def record(redis, principal, action: str, target: str, correlation_id: str, status: int, pipe=None,
           tenant: str | None = None) -> None:
    entry = {
        "time": time.time(),
        "who": principal.subject if principal else "anonymous",
        "role": str(principal.role) if principal else None,
        "tenant": tenant or (principal.tenant if principal else None),
        "action": action,
        "target": target,
        "status": status,
        "correlation_id": correlation_id,
    }
    (pipe or redis).xadd(store.AUDIT, {"data": json.dumps(entry)}, maxlen=MAX_RECORDS, approximate=True)


def query(redis, after: str | None, limit: int, tenant: str | None = None, action: str | None = None) -> list[dict]:
    """Newest first; `after` is the id of the last record of the previous page."""
    out, cursor = [], f"({after}" if after else "+"
    while len(out) < limit:
        try:
            batch = redis.xrevrange(store.AUDIT, cursor, "-", count=max(limit, 100))
        except ResponseError:  # a cursor at the very start ("(0-0") has nothing before it
            break
        if not batch:
            break
        for record_id, fields in batch:
            entry = json.loads(fields["data"])
            if (tenant and entry["tenant"] != tenant) or (action and entry["action"] != action):
                continue
            out.append({"id": record_id} | entry)
            if len(out) == limit:
                break
        cursor = f"({batch[-1][0]}"
    return out
