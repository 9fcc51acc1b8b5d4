"""A trace in NetBox for every job that touched devices: one journal entry per device.

Operators see a node's job history on its NetBox page. The text holds the job id, playbook,
outcome, changed count and correlation id; never variables (they may carry secrets).
"""

import logging

from runner_api.inventory import netbox_client

log = logging.getLogger(__name__)

KIND = {"successful": "success", "failed": "danger", "timeout": "warning", "canceled": "warning"}


def entries(job: dict, status: str, stats: dict) -> list[dict]:
    node_ids = job.get("node_ids") or {}
    out = []
    for host, counts in sorted(stats.items()):
        if host not in node_ids:
            continue
        out.append({
            "assigned_object_type": "dcim.device",
            "assigned_object_id": node_ids[host],
            "kind": KIND.get(status, "info"),
            "comments": (f"gpucloud job `{job['id']}`: playbook **{job['playbook']}** finished **{status}**, "
                         f"changed {counts.get('changed', 0)}, failed {counts.get('failed', 0)}, "
                         f"unreachable {counts.get('unreachable', 0)}. Tenant {job['tenant']}, "
                         f"correlation id {job.get('correlation_id')}."),
        })
    return out


def write(settings, job: dict, status: str, stats: dict) -> str:
    """Returns a short note for the job record; NetBox trouble never fails the job itself."""
    batch = entries(job, status, stats)
    if not batch:
        return "no devices touched"
    try:
        netbox_client(settings).create("extras/journal-entries", batch)
    except Exception as exc:
        return f"journal not written: {exc}"
    return f"journal entries on {len(batch)} devices"
