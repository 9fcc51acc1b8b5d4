"""A trace in NetBox for every job that touched devices: one journal entry per device.

Operators see a node's job history on its NetBox page. The text holds the job id, playbook,
outcome, changed count and correlation id; never variables (they may carry secrets).
"""

import logging

from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_journal
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
            "device_id": node_ids[host],
            "kind": KIND.get(status, "info"),
            "comments": (f"gpucloud job `{job['id']}`: playbook **{job['playbook']}** finished **{status}**, "
                         f"changed {counts.get('changed', 0)}, failed {counts.get('failed', 0)}, "
                         f"unreachable {counts.get('unreachable', 0)}. Tenant {job['tenant']}, "
                         f"correlation id {job.get('correlation_id')}."),
        })
    return out


def write(settings, job: dict, status: str, stats: dict) -> str:
    """Returns a short note for the job record; NetBox trouble never fails the job itself."""
    batch, _ = netbox_journal.normalize(entries(job, status, stats))  # ids come from NetBox, text from us
    if not batch:
        return "no devices touched"
    try:
        netbox_journal.write(netbox_client(settings), batch)
    except Exception as exc:  # the run's outcome stands; tenants see only the error's kind, the log the rest
        log.warning("job %s: NetBox journal not written: %s", job["id"], exc)
        return f"journal not written: {type(exc).__name__}"
    return f"journal entries on {len(batch)} devices"
