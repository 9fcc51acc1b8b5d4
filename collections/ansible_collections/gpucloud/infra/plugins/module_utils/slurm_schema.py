# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""JSON schemas of the Slurm layer: the input (the cluster's settings and its nodes' NetBox facts) and the
structured config (slurm.conf, gres.conf, topology.conf and cgroup.conf as key=value pairs, the health check's
expectations per node).
"""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils.schema import array, errors, expected, named, obj

__all__ = ["INPUT", "STRUCTURED", "errors", "named"]

# Names Slurm reads through its hostlist parser must not hold its syntax: brackets, commas, blanks, '='.
NAME = expected({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$", "maxLength": 128},
               "a name of letters, digits, '_', '.', ':', '+' or '-' (no blanks, brackets or commas; at most 128)")
# ClusterName is lower-cased by Slurm and at most 40 characters.
CLUSTER_NAME = expected({"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]*$", "maxLength": 40},
                       "lower-case letters, digits, '-' or '_', at most 40")
ABS_PATH = expected({"type": "string", "pattern": r"^/[^\s,=]*$"}, "an absolute path without blanks, ',' or '='")
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
ADDRESS = expected({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"}, "a host name or IP address")
VERSION = expected({"type": "string", "pattern": r"^[0-9]+\.[0-9]+(\.[0-9]+)?"}, "a Slurm version like 22.05.8")
# A value written into slurm.conf as it is: no blanks, no line breaks, no '#' (Slurm's comment character).
VALUE = expected({"type": ["string", "integer", "boolean"], "pattern": r"^[^\s#]+$"},
                "one value without blanks, line breaks or '#' (Slurm's comment)")
OPTIONS = {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9]*$"}, "additionalProperties": VALUE}
TOPOLOGIES = ["auto", "tree", "block", "none"]
ACCESS = ["none", "accounts", "groups"]

CONTROLLER = obj(["name", "hostname", "address"], {"name": NAME, "hostname": ADDRESS, "address": ADDRESS})
PATHS = obj(["conf_dir", "state_save", "slurmd_spool", "log_dir", "run_dir", "munge_socket"],
            {key: ABS_PATH for key in ("conf_dir", "state_save", "slurmd_spool", "log_dir", "run_dir",
                                       "munge_socket")},
            {"task_prolog": ABS_PATH})
HEALTH = obj(["program", "interval", "node_state"],
             {"program": ABS_PATH, "interval": {"type": "integer", "minimum": 1},
              "node_state": {"type": "string", "pattern": r"^[A-Z_]+(,[A-Z_]+)*$"}})
ACCOUNTING = obj(["host", "port"], {"host": ADDRESS, "port": PORT}, {"enforce": VALUE})
CLUSTER = obj(
    ["name", "version", "controllers", "slurmctld_port", "slurmd_port", "paths", "slurm_user", "configless",
     "topology", "proctrack", "task_plugin", "config_overrides", "partition_access", "default_partition",
     "memory_fraction"],
    {"name": CLUSTER_NAME, "version": VERSION, "controllers": array(CONTROLLER, minItems=1, maxItems=3),
     "slurmctld_port": PORT, "slurmd_port": PORT, "paths": PATHS,
     "slurm_user": {"type": "string", "pattern": r"^[a-z_][a-z0-9_-]*$"}, "configless": {"type": "boolean"},
     "topology": {"enum": TOPOLOGIES}, "proctrack": {"type": "string", "pattern": r"^proctrack/[a-z]+$"},
     "task_plugin": {"type": "string", "pattern": r"^task/[a-z]+(,task/[a-z]+)*$"},
     "config_overrides": {"type": "boolean"}, "partition_access": {"enum": ACCESS}, "default_partition": NAME,
     "memory_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}},
    {"health_check": {"oneOf": [{"type": "null"}, HEALTH]}, "accounting": {"oneOf": [{"type": "null"}, ACCOUNTING]},
     "cgroup_plugin": {"type": "string", "pattern": r"^(autodetect|disabled|cgroup/v[12])$"},
     "options": OPTIONS, "partition_options": OPTIONS, "cgroup_options": OPTIONS})
GPU = obj(["vendor", "model", "count"],
          {"vendor": {"type": "string", "minLength": 1}, "model": {"type": "string", "minLength": 1},
           "count": {"type": "integer", "minimum": 1, "maximum": 64}})
NODE = obj(["name", "address", "cpus", "memory_gb"],
           {"name": NAME, "address": ADDRESS, "cpus": {"type": "integer", "minimum": 1},
            "memory_gb": {"type": "number", "exclusiveMinimum": 0}},
           {"port": {"oneOf": [{"type": "null"}, PORT]}, "gpu": {"oneOf": [{"type": "null"}, GPU]},
            "project": {"oneOf": [{"type": "null"}, NAME]}, "site": {"type": ["string", "null"]},
            "location": {"type": ["string", "null"]}, "rack": {"type": ["string", "null"]},
            "leaf": {"oneOf": [{"type": "null"}, NAME]},
            "nvlink_domain": {"oneOf": [{"type": "null"}, NAME]},
            "device_root": {"type": "string", "pattern": r"^(/[^\s,=\[\]]*)?$"}})
TOPOLOGY = obj([], {}, {"spines": {"type": "object", "additionalProperties": array(NAME)},
                        "pods": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}})
INPUT = obj(["cluster", "nodes"],
            {"cluster": CLUSTER, "nodes": array(NODE, minItems=1)},
            {"topology": TOPOLOGY, "previous_nodes": {"oneOf": [{"type": "null"}, array(NAME)]},
             "previous_settings": {"oneOf": [{"type": "null"}, {"type": "object",
                                                                  "additionalProperties": array({"type": "string"})}]}})

# A line of a Slurm config file: [[key, value], ...] in order.
PAIRS = array({"type": "array", "prefixItems": [{"type": "string", "pattern": r"^[A-Za-z]+$"}, VALUE],
               "minItems": 2, "maxItems": 2})
HEALTH_NODE = obj(["gpus", "devices"], {"gpus": {"type": "integer", "minimum": 0}, "devices": array(ABS_PATH)},
                  {"smi": {"type": ["string", "null"]}})
STRUCTURED = obj(
    ["cluster_name", "version", "topology_plugin", "slurm_conf", "nodes", "partitions", "gres", "topology",
     "cgroup", "health", "node_names", "nodes_added", "nodes_removed", "apply", "apply_reasons"],
    {"cluster_name": CLUSTER_NAME, "version": VERSION,
     "topology_plugin": {"enum": ["topology/tree", "topology/block", "topology/none", "topology/default"]},
     "slurm_conf": PAIRS, "nodes": array(PAIRS), "partitions": array(PAIRS), "gres": array(PAIRS),
     "topology": array(PAIRS), "cgroup": PAIRS,
     "health": {"type": "object", "additionalProperties": HEALTH_NODE},
     "node_names": array(NAME), "nodes_added": array(NAME), "nodes_removed": array(NAME),
     "apply": {"enum": ["reconfigure", "restart", "restart-all"]}, "apply_reasons": array({"type": "string"})},
    {"warnings": array({"type": "string"})})
