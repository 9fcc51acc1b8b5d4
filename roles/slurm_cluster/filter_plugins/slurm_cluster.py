# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Filters of the slurm_cluster role: controllers, daemon command lines, what sinfo says of the nodes."""

from __future__ import annotations

import re
import shlex


def slurm_cluster_controllers(hosts, hostvars, addresses=None) -> list[dict]:
    """slurm_config controllers: each host's own host name (gathered: SlurmctldHost must be the machine's name)
    and its address (slurm_cluster_controller_addresses, else the node's address)."""
    addresses = addresses or {}
    out = []
    for host in hosts:
        hv = hostvars[host]
        address = hv.get("slurm_cluster_node_address") or hv.get("mgmt_ip") or hv.get("ansible_host") or host
        out.append({"name": host, "hostname": (hv.get("ansible_facts") or {}).get("hostname") or host,
                    "address": addresses.get(host) or address})
    return out


def slurm_cluster_command(argv) -> str:
    """An argv as one shell-quoted command line (systemd ExecStart, supervisord command)."""
    return " ".join(shlex.quote(str(arg)) for arg in argv)


# sinfo %T states of a node that has not registered (yet), stopped answering ('*'), or registered with less than
# its configuration ("inval": the hardware does not match NetBox).
_UNREGISTERED = ("unknown", "down", "future", "not_responding", "inval")
# Drain reasons that mean the node is not what the config (NetBox) says, or failed gpucloud's health check.
_BROKEN = re.compile(r"^(gpucloud-health:|Low |Invalid|gres/)|gres/gpu count")


def slurm_cluster_unregistered(sinfo_out: str, names) -> list[str]:
    """The nodes of `names` that sinfo ('%N %T' lines) does not show registered, as 'name (state)'."""
    states = {}
    for line in str(sinfo_out).splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return [f"{name} ({states.get(name, 'missing')})" for name in names
            if name not in states or states[name].endswith("*") or states[name].startswith(_UNREGISTERED)]


def slurm_cluster_broken(sinfo_out: str) -> list[str]:
    """'name: reason' of the nodes sinfo ('%N %T %E' lines) shows drained for not being what NetBox says (too little
    memory, fewer GPUs) or by the health check; a drain an operator set is theirs."""
    out = []
    for line in str(sinfo_out).splitlines():
        parts = line.split(None, 2)
        reason = parts[2] if len(parts) > 2 else ""
        if len(parts) >= 2 and parts[1].startswith(("drain", "drng")) and _BROKEN.search(reason):
            out.append(f"{parts[0]}: {reason}")
    return sorted(set(out))


class FilterModule:
    def filters(self):
        return {"slurm_cluster_controllers": slurm_cluster_controllers,
                "slurm_cluster_command": slurm_cluster_command,
                "slurm_cluster_unregistered": slurm_cluster_unregistered,
                "slurm_cluster_broken": slurm_cluster_broken}
