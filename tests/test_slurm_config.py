"""The Slurm config builder (gpucloud.infra.slurm_config), its renderer and offline checks, without services.

Data-driven: the decisions per Slurm version (topology tree vs block, BlockSizes, how a node change is applied),
GRES per GPU vendor, a partition per project, every input error at once naming its field, and the rendered-file
checks catching what slurmctld refuses. tests/test_slurm_cluster.py runs the same config on a real slurmctld.
"""

import copy

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils import cluster_topology, hostlist, slurm_config
from ansible_collections.gpucloud.infra.plugins.module_utils import slurm_render as render

CLUSTER = {
    "name": "acme-train", "version": "22.05.8",
    "controllers": [{"name": "gpu-n01", "hostname": "gpu-n01", "address": "10.1.0.1"}],
    "slurmctld_port": 6817, "slurmd_port": 6818,
    "paths": {"conf_dir": "/etc/slurm", "state_save": "/var/spool/slurmctld", "slurmd_spool": "/var/spool/slurmd",
              "log_dir": "/var/log/slurm", "run_dir": "/run/slurm", "munge_socket": "/run/munge/munge.socket.2",
              "task_prolog": "/usr/local/libexec/gpucloud/slurm-task-prolog"},
    "slurm_user": "slurm", "configless": True, "topology": "auto", "proctrack": "proctrack/cgroup",
    "task_plugin": "task/cgroup,task/affinity", "config_overrides": False, "partition_access": "none",
    "default_partition": "batch", "memory_fraction": 0.95,
    "health_check": {"program": "/usr/local/libexec/gpucloud/slurm-health", "interval": 300, "node_state": "ANY"},
}
SPINES = {f"leaf-r{r}": ["spine-dc1-1", "spine-dc1-2"] for r in (1, 2, 3)}


def node(name, leaf="leaf-r1", domain=None, vendor="NVIDIA", model="H100-SXM5-80GB", count=8, project="train",
         **extra):
    return {"name": name, "address": f"10.1.0.{int(name[-2:])}", "cpus": 112, "memory_gb": 2048,
            "gpu": {"vendor": vendor, "model": model, "count": count}, "project": project, "site": "dc1",
            "location": "dc1-row01", "leaf": leaf, "nvlink_domain": domain or f"nvl8-{name}", **extra}


def hgx(n=4, **kw):
    return [node(f"gpu-n{i:02d}", leaf="leaf-r1" if i <= 2 else "leaf-r2", **kw) for i in range(1, n + 1)]


def nvl72(sizes=(5, 5)):
    """GB200 trays: one NVL72 domain (and leaf) per rack."""
    out, i = [], 1
    for rack, size in enumerate(sizes, 1):
        for _ in range(size):
            out.append(node(f"gpu-n{i:02d}", leaf=f"leaf-r{rack}", domain=f"nvl72-r{rack}", model="GB200", count=4))
            i += 1
    return out


def build(nodes, version="22.05.8", previous=None, **cluster):
    return slurm_config.build({"cluster": {**CLUSTER, "version": version, **cluster}, "nodes": nodes,
                               "topology": {"spines": SPINES}, "previous_nodes": previous})


def lines(config, key):
    return [dict(pairs) for pairs in config[key]]


def files(config):
    out = render.render(config)
    assert render.check(out, config["version"]) == [], out
    return out


# -- topology per Slurm version ------------------------------------------------------------------------------------

def test_hgx_cluster_is_a_leaf_spine_tree():
    config = build(hgx(4))
    assert config["topology_plugin"] == "topology/tree"
    assert lines(config, "topology") == [
        {"SwitchName": "leaf-r1", "Nodes": "gpu-n[01-02]"}, {"SwitchName": "leaf-r2", "Nodes": "gpu-n[03-04]"},
        {"SwitchName": "spine-dc1", "Switches": "leaf-r[1-2]"}]
    assert "SwitchName=spine-dc1 Switches=leaf-r[1-2]" in files(config)["topology.conf"]


def test_nvl72_domains_are_the_level_below_their_leaf_on_22_05():
    config = build(nvl72((5, 3)))
    assert config["topology_plugin"] == "topology/tree"
    assert lines(config, "topology") == [
        {"SwitchName": "nvl72-r1", "Nodes": "gpu-n[01-05]"}, {"SwitchName": "leaf-r1", "Switches": "nvl72-r1"},
        {"SwitchName": "nvl72-r2", "Nodes": "gpu-n[06-08]"}, {"SwitchName": "leaf-r2", "Switches": "nvl72-r2"},
        {"SwitchName": "spine-dc1", "Switches": "leaf-r[1-2]"}]
    files(config)


@pytest.mark.parametrize(("version", "sizes", "plugin", "block_sizes"), [
    ("22.05.8", (5, 5), "topology/tree", None),       # no topology/block before 23.11
    ("23.11.4", (5, 5), "topology/block", None),      # equal blocks, no BlockSizes yet
    ("23.11.4", (5, 3), "topology/tree", None),       # 23.11 refuses unequal blocks: tree instead
    ("24.05.1", (5, 3), "topology/block", 3),         # BlockSizes: the smallest block is the base
    ("25.05.0", (18, 18, 9), "topology/block", 9),
], ids=["22.05", "23.11-equal", "23.11-unequal", "24.05", "25.05"])
def test_auto_picks_block_where_the_version_allows(version, sizes, plugin, block_sizes):
    config = build(nvl72(sizes), version=version)
    assert config["topology_plugin"] == plugin
    blocks = [line for line in lines(config, "topology") if "BlockName" in line]
    if plugin == "topology/block":
        assert [b["BlockName"] for b in blocks] == [f"nvl72-r{r}" for r in range(1, len(sizes) + 1)]
        assert [line.get("BlockSizes") for line in lines(config, "topology") if "BlockSizes" in line] == (
            [block_sizes] if block_sizes else [])
    files(config)


def test_hgx_nodes_never_get_blocks():
    """An HGX server is an NVLink domain of its own: blocks of one node would leave nothing to pack."""
    config = build(hgx(4), version="24.05.1")
    assert config["topology_plugin"] == "topology/tree"


def test_block_asked_for_where_it_cannot_be_fails_naming_why():
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build(hgx(2), version="24.05.1", topology="block")
    assert "cluster.topology: block: nodes gpu-n[01-02] share no NVLink domain" in err.value.errors[0]
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build(nvl72(), topology="block")
    assert "needs Slurm 23.11 or later, this is 22.5.8" in err.value.errors[0]


def test_topology_none_and_its_23_11_name():
    assert build(hgx(2), topology="none")["topology_plugin"] == "topology/none"
    config = build(hgx(2), version="23.11.1", topology="none")
    assert config["topology_plugin"] == "topology/default" and "topology.conf" not in render.render(config)


def test_several_planes_and_sites_join_under_one_switch():
    nodes = [*hgx(2), node("gpu-n09", leaf="leaf-x", site="dc2")]
    config = slurm_config.build({"cluster": CLUSTER, "nodes": nodes,
                                 "topology": {"spines": {**SPINES, "leaf-x": ["spine-dc2-1", "spine-dc2-2"]}}})
    assert lines(config, "topology")[-3:] == [
        {"SwitchName": "dc1", "Switches": "spine-dc1"}, {"SwitchName": "dc2", "Switches": "spine-dc2"},
        {"SwitchName": "acme-train", "Switches": "dc[1-2]"}]
    files(config)


def test_without_spines_the_pod_then_the_site_is_above_the_leaves():
    nodes = hgx(4)
    config = slurm_config.build({"cluster": CLUSTER, "nodes": nodes, "topology": {"pods": {"dc1-row01": "pod-a"}}})
    assert lines(config, "topology")[-1] == {"SwitchName": "pod-a", "Switches": "leaf-r[1-2]"}
    config = slurm_config.build({"cluster": CLUSTER, "nodes": nodes})
    assert lines(config, "topology")[-1] == {"SwitchName": "dc1", "Switches": "leaf-r[1-2]"}


def test_a_node_without_a_leaf_fails_tree_and_names_it():
    nodes = [*hgx(2), node("gpu-n07", leaf=None)]
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build(nodes)
    assert err.value.errors == [
        "nodes: gpu-n07 have no leaf switch in NetBox (eth0 is not cabled), and topology/tree never runs a job on "
        "nodes outside the tree; cable them or set the topology to none"]
    assert build(nodes, topology="none")["topology"] == []


# -- GRES per vendor ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("vendor", "model", "count", "gres", "file", "flags"), [
    ("NVIDIA", "H100-SXM5-80GB", 8, "gpu:h100-sxm5-80gb:8", "/dev/nvidia[0-7]", "nvidia_gpu_env"),
    ("AMD", "MI300X", 8, "gpu:mi300x:8", "/dev/dri/renderD[128-135]", "amd_gpu_env"),
    ("Intel", "Gaudi3", 8, "gpu:gaudi3:8", "/dev/accel/accel[0-7]", "intel_gpu_env"),
    ("NVIDIA", "GB200", 4, "gpu:gb200:4", "/dev/nvidia[0-3]", "nvidia_gpu_env"),
])
def test_gres_per_vendor(vendor, model, count, gres, file, flags):
    config = build([node("gpu-n01", vendor=vendor, model=model, count=count)])
    assert lines(config, "nodes")[0]["Gres"] == gres
    assert lines(config, "gres") == [{"NodeName": "gpu-n01", "Name": "gpu", "Type": gres.split(":")[1],
                                      "File": file, "Flags": flags}]
    has_prolog = any(k == "TaskProlog" for k, _v in config["slurm_conf"])
    assert has_prolog == (vendor == "Intel")  # Slurm sets no Gaudi variable: the task prolog does
    files(config)


def test_nodes_with_the_same_devices_share_a_gres_line_and_roots_split_them():
    config = build(hgx(4))
    assert [g["NodeName"] for g in lines(config, "gres")] == ["gpu-n[01-04]"]
    emulated = [dict(n, device_root=f"/lab/{n['name']}", port=20000 + i) for i, n in enumerate(hgx(2))]
    config = build(emulated)
    assert [g["File"] for g in lines(config, "gres")] == ["/lab/gpu-n01/dev/nvidia[0-7]",
                                                          "/lab/gpu-n02/dev/nvidia[0-7]"]
    assert config["health"]["gpu-n02"]["devices"][7] == "/lab/gpu-n02/dev/nvidia7"
    settings = dict(config["slurm_conf"])
    assert settings["SlurmdSpoolDir"] == "/var/spool/slurmd/%n" and settings["SlurmdPidFile"].endswith("-%n.pid")
    assert [n["Port"] for n in lines(config, "nodes")] == [20000, 20001]


def test_resources_follow_netbox():
    config = build([node("gpu-n01"), node("gpu-n02", model="GB200", count=4)])
    n1 = lines(config, "nodes")[0]
    assert (n1["CPUs"], n1["RealMemory"]) == (112, int(2048 * 1024 * 0.95))
    assert n1["Features"] == "nvidia,h100-sxm5-80gb,leaf-r1"
    settings = dict(config["slurm_conf"])
    assert settings["DefCpuPerGPU"] == 14 and settings["DefMemPerCPU"] == int(2048 * 1024 * 0.95) // 112


# -- partitions ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("access", "accounting", "extra"), [
    ("none", None, {}), ("groups", None, {"AllowGroups": "train"}),
    ("accounts", {"host": "ctl", "port": 6819}, {"AllowAccounts": "train"})])
def test_a_partition_per_project(access, accounting, extra):
    nodes = [*hgx(2), node("gpu-n03", project="infer"), node("gpu-n04", project=None)]
    config = build(nodes, partition_access=access, accounting=accounting, partition_options={"MaxTime": "7-0"})
    parts = lines(config, "partitions")
    assert [p["PartitionName"] for p in parts] == ["infer", "train", "batch"]
    assert parts[1] == {"PartitionName": "train", "Nodes": "gpu-n[01-02]",
                        **{k.replace("train", "train"): v for k, v in extra.items()},
                        "Default": "NO", "State": "UP", "MaxTime": "7-0"}
    assert [p["Default"] for p in parts] == ["NO", "NO", "YES"]  # nodes without a project: the default
    files(config)


def test_the_first_project_is_the_default_when_every_node_has_one():
    parts = lines(build([*hgx(2), node("gpu-n03", project="infer")]), "partitions")
    assert [(p["PartitionName"], p["Default"]) for p in parts] == [("infer", "YES"), ("train", "NO")]


def test_accounting_settings_use_the_cluster_socket_for_slurmdbd_too():
    config = build(hgx(1), accounting={"host": "ctl", "port": 6819}, partition_access="accounts",
                   paths={**CLUSTER["paths"], "munge_socket": "/lab/run/munge/munge.socket.2"})
    settings = dict(config["slurm_conf"])
    assert settings["AccountingStorageHost"] == "ctl" and settings["AccountingStorageEnforce"] == "associations"
    assert settings["AccountingStoragePort"] == 6819 and settings["AccountingStorageTRES"] == "gres/gpu"
    assert settings["AccountingStoragePass"] == "/lab/run/munge/munge.socket.2"


def test_operator_options_replace_or_add():
    config = build(hgx(1), options={"SelectTypeParameters": "CR_GPU", "MaxJobCount": 50000, "PrologFlags": "Alloc"},
                   cgroup_options={"ConstrainSwapSpace": "no"})
    settings = config["slurm_conf"]
    assert ["SelectTypeParameters", "CR_GPU"] in settings and ["SelectTypeParameters", "CR_Core_Memory"] not in settings
    assert settings[-2:] == [["MaxJobCount", 50000], ["PrologFlags", "Alloc"]]
    assert ["ConstrainSwapSpace", "no"] in config["cgroup"]


def test_ha_pair():
    config = build(hgx(2), controllers=[{"name": "gpu-n01", "hostname": "gpu-n01", "address": "10.1.0.1"},
                                        {"name": "gpu-n02", "hostname": "gpu-n02", "address": "10.1.0.2"}])
    assert [v for k, v in config["slurm_conf"] if k == "SlurmctldHost"] == ["gpu-n01(10.1.0.1)", "gpu-n02(10.1.0.2)"]
    assert "SlurmctldHost=gpu-n02(10.1.0.2)" in files(config)["slurm.conf"]


# -- applying a change ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "previous", "apply", "added", "removed"), [
    ("22.05.8", None, "reconfigure", [], []),                            # first deployment
    ("22.05.8", ["gpu-n01", "gpu-n02", "gpu-n03"], "reconfigure", [], []),   # same nodes
    ("22.05.8", ["gpu-n01", "gpu-n02"], "restart", ["gpu-n03"], []),      # reconfigure would stop slurmctld
    ("22.05.8", ["gpu-n01", "gpu-n02", "gpu-n03", "gpu-n09"], "restart", [], ["gpu-n09"]),
    ("23.11.1", ["gpu-n01", "gpu-n02"], "reconfigure", ["gpu-n03"], []),  # 23.11 re-execs on reconfigure
])
def test_how_a_change_is_applied(version, previous, apply, added, removed):
    config = build(hgx(3), version=version, previous=previous)
    assert (config["apply"], config["nodes_added"], config["nodes_removed"]) == (apply, added, removed)


def settings_of(config) -> dict:
    return slurm_config.keyed(config["slurm_conf"])


@pytest.mark.parametrize(("change", "apply", "reason"), [
    ({}, "reconfigure", None),
    ({"options": {"MaxJobCount": 50000}}, "reconfigure", None),             # a reconfigure takes it
    ({"slurmctld_port": 7817}, "restart", "restart: SlurmctldPort 6817 -> 7817"),
    ({"controllers": [CLUSTER["controllers"][0], {"name": "gpu-n02", "hostname": "gpu-n02", "address": "10.1.0.2"}]},
     "restart", "restart: SlurmctldHost gpu-n01(10.1.0.1) -> gpu-n01(10.1.0.1),gpu-n02(10.1.0.2)"),
    ({"topology": "none"}, "restart", "restart: TopologyPlugin topology/tree -> topology/none"),
    ({"task_plugin": "task/affinity"}, "restart-all", "restart-all: TaskPlugin task/cgroup,task/affinity -> "),
    ({"slurmd_port": 7818}, "restart-all", "restart-all: SlurmdPort 6818 -> 7818"),
], ids=["nothing", "reconfigurable", "ctld-port", "ha-backup", "topology-plugin", "task-plugin", "slurmd-port"])
def test_settings_no_reconfigure_takes_need_restarts(change, apply, reason):
    before = settings_of(build(hgx(3)))
    config = slurm_config.build({"cluster": {**CLUSTER, **change}, "nodes": hgx(3), "topology": {"spines": SPINES},
                                 "previous_nodes": [n["name"] for n in hgx(3)], "previous_settings": before})
    assert config["apply"] == apply
    assert (reason is None and config["apply_reasons"] == []) or any(
        r.startswith(reason) for r in config["apply_reasons"]), config["apply_reasons"]


def test_a_node_reached_elsewhere_needs_restarts():
    from ansible_collections.gpucloud.infra.plugins.action.slurm_config import previous

    ported = [dict(n, port=20000 + i) for i, n in enumerate(hgx(3))] + hgx(4)[3:]
    names, before = previous(files(build(ported))["slurm.conf"])
    moved = [ported[0], dict(ported[1], port=21001), dict(ported[2], address="10.9.9.9"), dict(ported[3], port=20003)]
    config = slurm_config.build({"cluster": CLUSTER, "nodes": moved, "topology": {"spines": SPINES},
                                 "previous_nodes": names, "previous_settings": before})
    assert config["apply"] == "restart-all"
    assert config["apply_reasons"] == ["restart-all: gpu-n02 Port 20001 -> 21001",
                                       "restart: gpu-n03 NodeAddr 10.1.0.3 -> 10.9.9.9",
                                       "restart-all: gpu-n04 Port (unset) -> 20003"]
    again = slurm_config.build({"cluster": CLUSTER, "nodes": moved, "topology": {"spines": SPINES},
                                "previous_nodes": names, "previous_settings": previous(files(config)["slurm.conf"])[1]})
    assert (again["apply"], again["apply_reasons"]) == ("reconfigure", [])


def test_a_project_named_like_the_default_partition_is_refused():
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build([node("gpu-n01", project="batch"), node("gpu-n02", project=None)])
    assert err.value.errors == ["nodes[0] (gpu-n01).project: batch is also the default partition's name "
                                "(cluster.default_partition); choose another default partition"]


def test_associations_are_enforced_only_where_partitions_need_accounts():
    dbd = {"host": "ctl", "port": 6819}
    assert "AccountingStorageEnforce" not in settings_of(build(hgx(1), accounting=dbd))
    assert settings_of(build(hgx(1), accounting=dbd, partition_access="accounts"))["AccountingStorageEnforce"] == [
        "associations"]


# -- bad input: every error at once, naming its field ------------------------------------------------------------

def test_every_input_error_at_once():
    nodes = [node("gpu-n01"), dict(node("gpu-n02"), cpus=None), node("gpu-n03", vendor="Acme"),
             dict(node("gpu-n04"), name="gpu n04")]
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build(nodes, name="Acme Train", slurmctld_port=70000)
    text = "\n".join(err.value.errors)
    for expected in ["cluster.name: expected lower-case letters, digits, '-' or '_', at most 40, got 'Acme Train'",
                     "cluster.slurmctld_port: 70000 is greater",
                     "nodes[1] (gpu-n02).cpus: None is not of type 'integer'",
                     "nodes[3] (gpu n04).name: expected a name of letters, digits"]:
        assert expected in text
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build([node("gpu-n01"), node("gpu-n01"), node("gpu-n03", vendor="Acme")], partition_access="accounts")
    assert err.value.errors == [
        "nodes[1] (gpu-n01).name: gpu-n01 is also nodes[0]",
        "nodes[2] (gpu-n03).gpu.vendor: expected a GPU vendor of amd, intel, nvidia, got 'Acme'",
        "cluster.partition_access: 'accounts' needs cluster.accounting (slurmdbd): without associations a job's "
        "account is unknown and it never starts"]


def test_options_cannot_smuggle_lines_or_comments():
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build(hgx(1), options={"Prolog": "/bin/true\nSlurmUser=root", "Epilog": "/x #y"})
    assert sorted(e.split(":")[0] for e in err.value.errors) == ["cluster.options.Epilog", "cluster.options.Prolog"]
    assert "expected one value without blanks, line breaks or '#'" in err.value.errors[0]


def test_config_errors_come_with_topology_errors():
    with pytest.raises(slurm_config.SlurmConfigError) as err:
        build(hgx(2), options={"Prolog": "a b"}, topology="block", partition_access="accounts")
    assert [e.split(":")[0] for e in err.value.errors] == [
        "cluster.options.Prolog", "cluster.partition_access", "cluster.topology"]


# -- offline checks of rendered files ----------------------------------------------------------------------------

GOOD = files(build(hgx(4)))
BAD = [
    ("partition-unknown-node", "slurm.conf", ("Nodes=gpu-n[01-04]", "Nodes=gpu-n[01-04,07]"),
     "partition train names unknown nodes gpu-n07"),
    ("two-defaults", "slurm.conf", ("State=UP\n", "State=UP\nPartitionName=x Nodes=gpu-n01 Default=YES\n"),
     "exactly one partition must be Default=YES, found 2"),
    ("node-twice", "slurm.conf", ("NodeName=gpu-n02", "NodeName=gpu-n01"), "NodeName gpu-n01 is defined twice"),
    ("gres-count", "gres.conf", ("/dev/nvidia[0-7]", "/dev/nvidia[0-6]"), "Gres=gpu:h100-sxm5-80gb:8 but 7 device"),
    ("two-roots", "topology.conf", ("SwitchName=spine-dc1 Switches=leaf-r[1-2]", "SwitchName=s Switches=leaf-r1"),
     "one switch must reach every node, the tops are leaf-r2, s"),
    ("node-twice-in-tree", "topology.conf", ("Nodes=gpu-n[03-04]", "Nodes=gpu-n[02-04]"),
     "node gpu-n02 is also under leaf-r1"),
    ("node-outside-tree", "topology.conf", ("Nodes=gpu-n[03-04]", "Nodes=gpu-n03"), "gpu-n04 are under no switch"),
    ("nodes-and-switches", "topology.conf", ("Nodes=gpu-n[03-04]", "Nodes=gpu-n[03-04] Switches=leaf-r1"),
     "needs Nodes or Switches, not both or neither"),
    ("missing-child", "topology.conf", ("Switches=leaf-r[1-2]", "Switches=leaf-r[1-3]"),
     "switch leaf-r3 is a child but never defined"),
]


@pytest.mark.parametrize(("name", "old_new", "expected"), [(f, o, e) for _i, f, o, e in BAD], ids=[b[0] for b in BAD])
def test_rendered_file_checks(name, old_new, expected):
    broken = dict(GOOD)
    assert old_new[0] in broken[name]
    broken[name] = broken[name].replace(old_new[0], old_new[1], 1)
    errors = render.check(broken, "22.05.8")
    assert any(expected in e for e in errors), errors


def test_block_file_checks():
    good = files(build(nvl72((5, 3)), version="24.05.1"))
    assert "BlockSizes=3" in good["topology.conf"]
    small = dict(good, **{"topology.conf": good["topology.conf"].replace("BlockSizes=3", "BlockSizes=4")})
    assert "blocks nvl72-r2 are smaller than the base size 4" in "\n".join(render.check(small, "24.05.1"))
    levels = dict(good, **{"topology.conf": good["topology.conf"].replace("BlockSizes=3", "BlockSizes=3,9")})
    assert "BlockSizes [9] are not the base 3 times a power of 2" in "\n".join(render.check(levels, "24.05.1"))
    assert "needs blocks of one size" in "\n".join(render.check(good, "23.11.1"))


# -- building blocks -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("names", "expression"), [
    (["n1", "n2", "n3", "n5"], "n[1-3,5]"),
    (["gpu-r01-k01-n01", "gpu-r01-k01-n02", "gpu-r01-k02-n01"], "gpu-r01-k01-n[01-02],gpu-r01-k02-n01"),
    (["a", "b10", "b9"], "a,b9,b10"),
    (["node009", "node010", "node011"], "node[009-011]"),
])
def test_hostlist_round_trip(names, expression):
    assert hostlist.compress(names) == expression
    assert sorted(hostlist.expand(expression)) == sorted(names)


@pytest.mark.parametrize(("spines", "plane"), [
    (["spine-dc1-1", "spine-dc1-2"], "spine-dc1"), (["spine11", "spine12"], "spine"), (["s1"], "s1"),
    (["a", "b"], "a_b"),
])
def test_spine_plane_names(spines, plane):
    assert cluster_topology.spine_plane_name(spines) == plane


def test_inputs_are_not_changed():
    nodes = hgx(2)
    before = copy.deepcopy(nodes)
    build(nodes)
    assert nodes == before
