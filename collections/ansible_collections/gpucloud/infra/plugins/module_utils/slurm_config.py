# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""AVD-style structured Slurm config: from the cluster's settings and its nodes' NetBox facts (never facts
gathered on the nodes) to slurm.conf, gres.conf, topology.conf and cgroup.conf as ordered key=value pairs, which
the templates (slurm_templates/) only print.

Decisions made here, by Slurm version (22.05 is Debian 12's):
- topology: `tree` from leaf/spine (site > spine plane > leaf > nodes) with the NVLink domains of NVL72-class
  racks as the level below their leaf; `block` (23.11+) with one block per NVLink domain when every node sits in
  one (23.11 needs equal blocks; 24.05+ takes BlockSizes with the smallest as base); `auto` picks block where it
  applies, else tree.
- gres: one `gpu` GRES per node, Type from the GPU model, File from the vendor's device files, Flags naming the
  vendor's environment variable (gpu_vendors).
- a partition per tenant project (nodes without one in the default partition), optionally restricted to the
  project's account (needs slurmdbd) or Unix group.
- applying: a changed node set needs slurmctld restarted before 23.11 (a reconfigure is fatal then: "hostnames
  inconsistency"); every other change, and node changes from 23.11 on, is `scontrol reconfigure`.
Every problem is reported at once, each naming its field.
"""

from __future__ import annotations

import re

from ansible_collections.gpucloud.infra.plugins.module_utils import cluster_topology, gpu_vendors, hostlist
from ansible_collections.gpucloud.infra.plugins.module_utils import slurm_schema as schema

BLOCK_FROM = (23, 11)        # topology/block exists
BLOCK_SIZES_FROM = (24, 5)   # BlockSizes replaces BlockLevels; blocks may differ (none below the base)
DEFAULT_TOPOLOGY_FROM = (23, 11)  # topology/none is called topology/default
RECONFIGURE_NODES_FROM = (23, 11)  # reconfigure re-execs the daemons, so a new node set needs no restart
# Settings no reconfigure changes (slurm.conf(5)): slurmctld must start again, and for the second set every slurmd.
CONTROLLER_RESTART_KEYS = ("ClusterName", "SlurmctldHost", "SlurmctldPort", "StateSaveLocation", "SlurmUser",
                           "SelectType", "SelectTypeParameters", "TopologyPlugin", "AccountingStorageType",
                           "AccountingStorageHost", "AccountingStoragePort", "AccountingStorageTRES")
NODE_RESTART_KEYS = ("SlurmdPort", "AuthType", "AuthInfo", "CredType", "ProctrackType", "TaskPlugin",
                     "SlurmdSpoolDir", "SlurmdParameters", "GresTypes")
APPLY_ORDER = ("reconfigure", "restart", "restart-all")
# A node's own address (slurmctld reaches it there) and port (its slurmd listens there): what a change of each takes.
NODE_REACH = {"NodeAddr": "restart", "Port": "restart-all"}
_TYPE_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


class SlurmConfigError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def version(text: str) -> tuple[int, ...]:
    """'22.05.8' -> (22, 5, 8); 'slurm-wlm 22.05.8' works too."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", str(text))
    return tuple(int(p) for p in match.groups() if p is not None) if match else (0,)


def gres_type(model: str) -> str:
    """NetBox's gpu_model as a GRES type: H100-SXM5-80GB -> h100-sxm5-80gb (no ':' or ',' for Slurm to split)."""
    return _TYPE_UNSAFE.sub("-", str(model).strip().lower()).strip("-")


def real_memory_mb(node: dict, fraction: float) -> int:
    """RealMemory below the nominal size: slurmd drains a node that reports less memory than configured."""
    return int(node["memory_gb"] * 1024 * fraction)


# -- input checks beyond the schema --------------------------------------------------------------------------------

def _cross_errors(inputs: dict) -> list[str]:
    errors, cluster, nodes = [], inputs["cluster"], inputs["nodes"]
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node["name"] in seen:
            errors.append(f"nodes[{i}].name: {node['name']} is also nodes[{seen[node['name']]}]")
        seen.setdefault(node["name"], i)
        gpu = node.get("gpu")
        if gpu:
            try:
                gpu_vendors.vendor(gpu["vendor"])
            except gpu_vendors.UnknownVendor as exc:
                errors.append(f"nodes[{i}].gpu.vendor: {exc}")
            if not gres_type(gpu["model"]):
                errors.append(f"nodes[{i}].gpu.model: {gpu['model']!r} has no letter or digit to name a GRES type")
    hosts = [c["hostname"] for c in cluster["controllers"]]
    if len(set(hosts)) != len(hosts):
        errors.append(f"cluster.controllers: each controller needs its own host, got {', '.join(hosts)}")
    if cluster["partition_access"] == "accounts" and not cluster.get("accounting"):
        errors.append("cluster.partition_access: 'accounts' needs cluster.accounting (slurmdbd): without "
                      "associations a job's account is unknown and it never starts")
    errors += [f"nodes[{i}].project: {n['project']} is also the default partition's name "
               f"(cluster.default_partition); choose another default partition"
               for i, n in enumerate(nodes) if n.get("project") == cluster["default_partition"]]
    ports = [n.get("port") for n in nodes if n.get("port")]
    if len(set(ports)) != len(ports):
        errors.append("nodes[].port: slurmd ports must differ (nodes sharing a host each need their own)")
    return errors


# -- slurm.conf ----------------------------------------------------------------------------------------------------

def _per_node_paths(nodes: list[dict]) -> bool:
    """Several slurmd on one host (nodes with their own port) need %n in their pid, spool and log paths."""
    return any(n.get("port") for n in nodes)


def _globals(cluster: dict, nodes: list[dict], plugin: str, ver: tuple, has_intel: bool) -> list[list]:
    paths, per_node = cluster["paths"], _per_node_paths(nodes)
    suffix = "-%n" if per_node else ""
    conf = [["ClusterName", cluster["name"]]]
    conf += [["SlurmctldHost", f"{c['hostname']}({c['address']})"] for c in cluster["controllers"]]
    conf += [
        ["SlurmctldPort", cluster["slurmctld_port"]], ["SlurmdPort", cluster["slurmd_port"]],
        ["SlurmUser", cluster["slurm_user"]],
        ["AuthType", "auth/munge"], ["CredType", "cred/munge"], ["AuthInfo", f"socket={paths['munge_socket']}"],
        ["StateSaveLocation", paths["state_save"]],
        ["SlurmdSpoolDir", paths["slurmd_spool"] + ("/%n" if per_node else "")],
        ["SlurmctldPidFile", f"{paths['run_dir']}/slurmctld.pid"],
        ["SlurmdPidFile", f"{paths['run_dir']}/slurmd{suffix}.pid"],
        ["SlurmctldLogFile", f"{paths['log_dir']}/slurmctld.log"],
        ["SlurmdLogFile", f"{paths['log_dir']}/slurmd{suffix}.log"],
        ["ProctrackType", cluster["proctrack"]], ["TaskPlugin", cluster["task_plugin"]],
        ["SelectType", "select/cons_tres"], ["SelectTypeParameters", "CR_Core_Memory"],
        ["GresTypes", "gpu"], ["TopologyPlugin", plugin], ["MpiDefault", "none"], ["ReturnToService", 2],
    ]
    if cluster["configless"]:
        conf.append(["SlurmctldParameters", "enable_configless"])
    if cluster["config_overrides"]:
        conf.append(["SlurmdParameters", "config_overrides"])
    conf += _defaults_per_resource(cluster, nodes)
    health = cluster.get("health_check")
    if health:
        conf += [["HealthCheckProgram", health["program"]], ["HealthCheckInterval", health["interval"]],
                 ["HealthCheckNodeState", health["node_state"]]]
    if has_intel and paths.get("task_prolog"):
        conf.append(["TaskProlog", paths["task_prolog"]])
    accounting = cluster.get("accounting")
    if accounting:
        conf += [["AccountingStorageType", "accounting_storage/slurmdbd"],
                 ["AccountingStorageHost", accounting["host"]], ["AccountingStoragePort", accounting["port"]],
                 # slurmdbd connections authenticate through this socket, not AuthInfo's.
                 ["AccountingStoragePass", paths["munge_socket"]],
                 ["JobAcctGatherType", "jobacct_gather/linux"],
                 ["AccountingStorageTRES", "gres/gpu"]]  # GPUs are what a GPU cloud accounts (and bills)
        # Enforcing associations rejects every job of a user without one: only where partitions need accounts.
        enforce = accounting.get("enforce") or ("associations" if cluster["partition_access"] == "accounts" else None)
        if enforce:
            conf.append(["AccountingStorageEnforce", enforce])
    return _override(conf, cluster.get("options") or {})


def _defaults_per_resource(cluster: dict, nodes: list[dict]) -> list[list]:
    """A job that asks only for GPUs gets the CPUs and memory that come with them on the leanest node."""
    out = []
    mem_per_cpu = min(real_memory_mb(n, cluster["memory_fraction"]) // n["cpus"] for n in nodes)
    out.append(["DefMemPerCPU", max(mem_per_cpu, 1)])
    gpu_nodes = [n for n in nodes if n.get("gpu")]
    if gpu_nodes:
        out.append(["DefCpuPerGPU", max(min(n["cpus"] // n["gpu"]["count"] for n in gpu_nodes), 1)])
    return out


def _override(pairs: list[list], options: dict) -> list[list]:
    """Operator options replace the computed value of the same key in place, or are appended."""
    keys = {k.lower(): k for k in options}
    out = [[k, options[keys.pop(k.lower())]] if k.lower() in keys else [k, v] for k, v in pairs]
    return out + [[k, options[k]] for k in options if k.lower() in keys]


def _features(node: dict, topo: dict) -> list[str]:
    place = topo["nodes"][node["name"]]
    gpu = node.get("gpu")
    found = [gpu_vendors_key(gpu["vendor"]), gres_type(gpu["model"])] if gpu else []
    found += [value for value in (place["leaf"], place["domain"]) if value]
    return found


def gpu_vendors_key(name: str) -> str:
    return str(name).strip().lower()


def _node_lines(cluster: dict, nodes: list[dict], topo: dict) -> list[list]:
    lines = []
    for node in nodes:
        line = [["NodeName", node["name"]], ["NodeAddr", node["address"]]]
        if node.get("port"):
            line.append(["Port", node["port"]])
        line += [["CPUs", node["cpus"]], ["RealMemory", real_memory_mb(node, cluster["memory_fraction"])]]
        if node.get("gpu"):
            line.append(["Gres", f"gpu:{gres_type(node['gpu']['model'])}:{node['gpu']['count']}"])
        features = _features(node, topo)
        if features:
            line.append(["Features", ",".join(features)])
        line.append(["State", "UNKNOWN"])
        lines.append(line)
    return lines


def _partitions(cluster: dict, nodes: list[dict]) -> list[list]:
    by_project: dict[str, list[str]] = {}
    for node in nodes:
        by_project.setdefault(node.get("project") or "", []).append(node["name"])
    default = cluster["default_partition"]
    names = sorted(p for p in by_project if p)
    lines = []
    for project in names + ([""] if "" in by_project else []):
        name = project or default
        line = [["PartitionName", name], ["Nodes", hostlist.compress(by_project[project])]]
        if project and cluster["partition_access"] == "accounts":
            line.append(["AllowAccounts", project])
        elif project and cluster["partition_access"] == "groups":
            line.append(["AllowGroups", project])
        is_default = (name == default) if "" in by_project else (project == names[0])
        line += [["Default", "YES" if is_default else "NO"], ["State", "UP"]]
        lines.append(_override(line, cluster.get("partition_options") or {}))
    return lines


# -- gres.conf -----------------------------------------------------------------------------------------------------

def _gres(nodes: list[dict]) -> tuple[list[list], dict]:
    """gres.conf lines (nodes with the same devices share one) and the health check's expectations per node."""
    grouped: dict[tuple, list[str]] = {}
    health = {}
    for node in nodes:
        gpu = node.get("gpu")
        if not gpu:
            health[node["name"]] = {"gpus": 0, "devices": [], "smi": None}
            continue
        try:
            spec = gpu_vendors.vendor(gpu["vendor"])
        except gpu_vendors.UnknownVendor:
            continue  # reported by _cross_errors
        root = node.get("device_root") or ""
        paths = [root + d["path"] for d in gpu_vendors.device_files(gpu["vendor"], gpu["count"])]
        health[node["name"]] = {"gpus": gpu["count"], "devices": paths, "smi": spec["smi"]}
        key = (gres_type(gpu["model"]), hostlist.compress(paths), spec["gres_flags"])
        grouped.setdefault(key, []).append(node["name"])
    lines = [[["NodeName", hostlist.compress(names)], ["Name", "gpu"], ["Type", gtype], ["File", files],
              ["Flags", flags]] for (gtype, files, flags), names in sorted(grouped.items(), key=lambda i: i[1])]
    return lines, health


# -- topology.conf -------------------------------------------------------------------------------------------------

def _switch_names(topo: dict, cluster_name: str) -> dict[str, str]:
    """Switch name per level key: leaves and planes keep theirs; NVLink domains and sites become switches
    under their own name unless it is taken (then prefixed)."""
    taken = set(topo["leaves"]) | set(topo["planes"])
    names = {}
    for kind, keys in (("nvlink", topo["domains"]), ("site", topo["sites"])):
        for key in keys:
            names[(kind, key)] = key if key not in taken else f"{kind}-{key}"
            taken.add(names[(kind, key)])
    names[("root", "")] = cluster_name if cluster_name not in taken else f"root-{cluster_name}"
    return names


def _tree(topo: dict, cluster_name: str, warnings: list[str]) -> list[list]:
    names = _switch_names(topo, cluster_name)
    lines = []
    for leaf, entry in sorted(topo["leaves"].items()):
        domains = sorted({topo["nodes"][n]["domain"] for n in entry["nodes"]} - {None})
        whole = domains and all(topo["nodes"][n]["domain"] for n in entry["nodes"]) and all(
            topo["domains"][d]["leaves"] == [leaf] for d in domains)
        if whole:  # the NVLink domains are the level below the leaf
            for domain in domains:
                lines.append([["SwitchName", names[("nvlink", domain)]],
                              ["Nodes", hostlist.compress(topo["domains"][domain]["nodes"])]])
            lines.append([["SwitchName", leaf],
                          ["Switches", hostlist.compress(names[("nvlink", d)] for d in domains)]])
        else:
            if domains:
                warnings.append(f"leaf {leaf}: NVLink domains {', '.join(domains)} span other leaves or share it "
                                "with nodes outside any domain; they are not a level of topology/tree")
            lines.append([["SwitchName", leaf], ["Nodes", hostlist.compress(entry["nodes"])]])
    for plane, entry in sorted(topo["planes"].items()):
        lines.append([["SwitchName", plane], ["Switches", hostlist.compress(entry["leaves"])]])
    if len(topo["planes"]) > 1:  # jobs may only span leaves that share a switch: join the planes
        for site, planes in sorted(topo["sites"].items()):
            lines.append([["SwitchName", names[("site", site)]], ["Switches", hostlist.compress(planes)]])
        if len(topo["sites"]) > 1:
            lines.append([["SwitchName", names[("root", "")]],
                          ["Switches", hostlist.compress(names[("site", s)] for s in topo["sites"])]])
    return lines


def _block_problem(topo: dict, nodes: list[dict], ver: tuple) -> str | None:
    """Why topology/block does not fit these nodes on this Slurm, or None."""
    if ver < BLOCK_FROM:
        return f"topology/block needs Slurm 23.11 or later, this is {'.'.join(map(str, ver))}"
    outside = [n["name"] for n in nodes if not topo["nodes"][n["name"]]["domain"]]
    if outside:
        return (f"nodes {hostlist.compress(outside)} share no NVLink domain with another node of the cluster, "
                "and Slurm never runs a job on nodes outside every block")
    sizes = {len(d["nodes"]) for d in topo["domains"].values()}
    if ver < BLOCK_SIZES_FROM and len(sizes) > 1:
        return f"Slurm before 24.05 needs blocks of one size, the NVLink domains hold {sorted(sizes)} nodes"
    return None


def _blocks(topo: dict, ver: tuple) -> list[list]:
    lines = [[["BlockName", domain], ["Nodes", hostlist.compress(entry["nodes"])]]
             for domain, entry in sorted(topo["domains"].items())]
    if ver >= BLOCK_SIZES_FROM:
        lines.append([["BlockSizes", min(len(d["nodes"]) for d in topo["domains"].values())]])
    return lines


def _topology(cluster: dict, nodes: list[dict], topo: dict, ver: tuple, errors: list[str],
              warnings: list[str]) -> tuple[str, list[list]]:
    wanted = cluster["topology"]
    none = "topology/default" if ver >= DEFAULT_TOPOLOGY_FROM else "topology/none"
    if wanted == "none":
        return none, []
    block_problem = _block_problem(topo, nodes, ver)
    if wanted == "block" or (wanted == "auto" and not block_problem):
        if block_problem:
            errors.append(f"cluster.topology: block: {block_problem}")
            return none, []
        return "topology/block", _blocks(topo, ver)
    if topo["unplaced"]:
        if wanted == "auto" and not topo["leaves"]:
            warnings.append("no node has a leaf switch in NetBox: no topology")
            return none, []
        errors.append(f"nodes: {hostlist.compress(topo['unplaced'])} have no leaf switch in NetBox (eth0 is not "
                      "cabled), and topology/tree never runs a job on nodes outside the tree; cable them or set "
                      "the topology to none")
        return none, []
    return "topology/tree", _tree(topo, cluster["name"], warnings)


# -- the whole config ----------------------------------------------------------------------------------------------

def _topology_of(inputs: dict, nodes: list[dict]) -> dict:
    topology = inputs.get("topology") or {}
    facts = [{"name": n["name"], "site": n.get("site"), "location": n.get("location"), "leaf": n.get("leaf"),
              "nvlink_domain": n.get("nvlink_domain")} for n in nodes]
    return cluster_topology.build(facts, topology.get("spines"), topology.get("pods"))


def _cgroup(cluster: dict) -> list[list]:
    conf = [["CgroupPlugin", cluster.get("cgroup_plugin") or "autodetect"], ["ConstrainCores", "yes"],
            ["ConstrainDevices", "yes"], ["ConstrainRAMSpace", "yes"], ["ConstrainSwapSpace", "yes"]]
    return _override(conf, cluster.get("cgroup_options") or {})


def keyed(pairs) -> dict[str, list[str]]:
    """Each key's values, in order (a key may repeat: SlurmctldHost for an HA pair)."""
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(str(value))
    return out


def reach(node_line) -> dict[str, list[str]]:
    """Where a node is reached, as 'NodeAddr:<node>' and 'Port:<node>' keys beside the global settings (unset: [])."""
    pairs = dict(node_line)
    return {f"{key}:{pairs['NodeName']}": [str(pairs[key])] if key in pairs else [] for key in NODE_REACH}


def _shown(values: list[str] | None) -> str:
    return ",".join(values or []) or "(unset)"


def _apply(settings: list[list], node_lines: list[list], previous: dict | None, nodes_changed: bool,
           ver: tuple) -> tuple[str, list[str]]:
    """How a running cluster takes the new config (APPLY_ORDER), and why."""
    reasons = []
    if nodes_changed and ver < RECONFIGURE_NODES_FROM:
        reasons.append("restart: the node set changed (before Slurm 23.11 a reconfigure would stop slurmctld)")
    if previous is not None:
        new, checks = keyed(settings), []
        for line in node_lines:
            reached = reach(line)
            new.update(reached)
            # an existing node reached elsewhere: slurmctld (its address), or its own slurmd too (its port)
            checks += [(key, NODE_REACH[key.split(":", 1)[0]]) for key in reached if key in previous]
        checks += [(key, "restart") for key in CONTROLLER_RESTART_KEYS]
        checks += [(key, "restart-all") for key in NODE_RESTART_KEYS]
        reasons += [f"{level}: {' '.join(reversed(key.split(':', 1)))} {_shown(previous.get(key))} -> "
                    f"{_shown(new.get(key))}" for key, level in checks if previous.get(key, []) != new.get(key, [])]
    levels = [r.split(":", 1)[0] for r in reasons]
    return max(levels, key=APPLY_ORDER.index, default="reconfigure"), reasons


def _blocking(errors: list[str]) -> bool:
    """Schema errors that leave the nodes or the cluster too broken to compute with."""
    return any(e.startswith(("(top)", "nodes", "cluster: ")) for e in errors)


def build(inputs: dict) -> dict:
    """The structured config (slurm_schema.STRUCTURED); SlurmConfigError lists every problem at once."""
    errors = schema.errors(inputs, schema.INPUT)
    if _blocking(errors):
        raise SlurmConfigError(schema.named(errors, inputs.get("nodes") if isinstance(inputs, dict) else None))
    errors += _cross_errors(inputs)
    cluster = inputs["cluster"]
    nodes = sorted(inputs["nodes"], key=lambda n: n["name"])
    ver, warnings = version(cluster["version"]), []
    topo = _topology_of(inputs, nodes)
    plugin, topology_lines = _topology(cluster, nodes, topo, ver, errors, warnings)
    gres, health = _gres(nodes)
    has_intel = any(gpu_vendors_key((n.get("gpu") or {}).get("vendor", "")) == "intel" for n in nodes)
    names = [n["name"] for n in nodes]
    previous = inputs.get("previous_nodes")
    added = sorted(set(names) - set(previous)) if previous is not None else []
    removed = sorted(set(previous) - set(names)) if previous is not None else []
    settings = _globals(cluster, nodes, plugin, ver, has_intel)
    node_lines = _node_lines(cluster, nodes, topo)
    apply, reasons = _apply(settings, node_lines, inputs.get("previous_settings"), added or removed, ver)
    config = {
        "cluster_name": cluster["name"], "version": cluster["version"], "topology_plugin": plugin,
        "slurm_conf": settings,
        "nodes": node_lines, "partitions": _partitions(cluster, nodes),
        "gres": gres, "topology": topology_lines, "cgroup": _cgroup(cluster), "health": health,
        "node_names": names, "nodes_added": added, "nodes_removed": removed,
        "apply": apply, "apply_reasons": reasons, "warnings": warnings,
    }
    if not errors:
        errors = schema.errors(config, schema.STRUCTURED, root="config")
    if errors:
        raise SlurmConfigError(schema.named(errors, inputs["nodes"]))
    return config
