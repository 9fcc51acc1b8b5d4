"""Job events: a Redis stream per job, written by the worker and read by the API (SSE and JSON).

Only display fields leave the worker: Ansible's own output (already censored for no_log tasks) and
names. Module results (`res`) stay in the job's private artifacts, which retention prunes.
"""

import json

from redis.exceptions import ResponseError

from runner_api import store

MAX_EVENTS = 20000
MAX_STDOUT = 8192
END = "job_end"
KEPT = ("play", "task", "role", "task_action", "host")


def display(event: dict) -> dict:
    data = event.get("event_data") or {}
    shown = {"event": event.get("event"), "counter": event.get("counter"), "created": event.get("created"),
             "stdout": (event.get("stdout") or "").replace("\r\n", "\n")[:MAX_STDOUT]}
    shown.update({key: data[key] for key in KEPT if data.get(key)})
    res = data.get("res") if isinstance(data.get("res"), dict) else {}
    if event.get("event", "").startswith("runner_on_"):
        shown["changed"] = bool(res.get("changed"))
    if event.get("event") == "playbook_on_stats":
        shown["stats"] = host_stats(data)
    return shown


def host_stats(data: dict) -> dict[str, dict]:
    """Per-host counts from a playbook_on_stats event."""
    names = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
             "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}
    hosts: dict[str, dict] = {}
    for source, target in names.items():
        for host, count in (data.get(source) or {}).items():
            hosts.setdefault(host, dict.fromkeys(names.values(), 0))[target] = count
    return hosts


RESULTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
           "runner_on_skipped": "skipped"}


def count_result(seen: dict[str, dict], event: dict) -> None:
    """Per-host counts built from task results as they arrive (the recap's shape)."""
    kind = RESULTS.get(event.get("event", ""))
    host = (event.get("event_data") or {}).get("host")
    if not kind or not host:
        return
    counts = seen.setdefault(host, dict.fromkeys(("ok", "changed", "failed", "unreachable", "skipped",
                                                  "rescued", "ignored"), 0))
    counts[kind] += 1
    res = (event.get("event_data") or {}).get("res")
    if kind == "ok" and isinstance(res, dict) and res.get("changed"):
        counts["changed"] += 1


class EventLog:
    def __init__(self, redis, job_id: str):
        self.redis = redis
        self.key = store.job_events(job_id)

    def publish(self, event: dict, pipe=None) -> None:
        (pipe or self.redis).xadd(self.key, {"data": json.dumps(event)}, maxlen=MAX_EVENTS, approximate=True)

    def read(self, after: str = "-", count: int = 100) -> list[tuple[str, dict]]:
        start = "-" if after in ("", "-", "0") else f"({after}"
        try:
            entries = self.redis.xrange(self.key, start, "+", count)
        except ResponseError:  # a cursor past the largest possible id has nothing after it
            return []
        return [(eid, json.loads(fields["data"])) for eid, fields in entries]

    def wait(self, after: str, block_ms: int) -> list[tuple[str, dict]]:
        reply = self.redis.xread({self.key: after or "0"}, count=200, block=block_ms)
        return [(eid, json.loads(fields["data"])) for _, entries in reply for eid, fields in entries]
