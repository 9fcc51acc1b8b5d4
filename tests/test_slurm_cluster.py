"""The slurm_cluster role for real: Debian's slurm-wlm 22.05 and munge on this machine, every node fact from NetBox.

The lab's servers are emulated here, so their slurmd all run on this machine, each with its own port
(slurm_cluster_single_host) under the lab's supervisord (no systemd here); their GPUs are stand-in character
devices (lab/node_host.py). Everything else is the production layout: configless nodes, /etc/slurm, munge's default
socket. The cluster spans both sites and every vendor: H100 (leaf dc1-r01, project train), GB200 trays sharing an
NVL72 domain (leaf dc1-r02, project infer), MI300X (dc1-r03) and Gaudi3 (dc2-r03).
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from cluster_nodes import ADDED, GAUDI, GB200, H100, MI300X, NODES, book_projects
from conftest import FLEET_NODES, ansible_playbook, recaps, wait_until
from lab import node_host
from lab.seed import ensure_fleet

pytestmark = [pytest.mark.netbox, pytest.mark.slow]

NAME = "citest"
EXPECTED_GRES = {**dict.fromkeys([*H100, ADDED], "gpu:h100-sxm5-80gb:8"), **dict.fromkeys(GB200, "gpu:gb200:4"),
                 MI300X: "gpu:mi300x:8", GAUDI: "gpu:gaudi3:8"}
SLURM_CONF = Path("/etc/slurm/slurm.conf")
# The lab's own layout (a root per cluster, its own munge, so no configless); this test runs the production one.
LAB_LAYOUT = ("slurm_cluster_root", "slurm_cluster_configless", "slurm_cluster_slurmctld_port")


def slurm(*cmd, check=True) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env={**os.environ, "SLURM_CONF": str(SLURM_CONF)})
    assert not check or proc.returncode == 0, f"{' '.join(cmd)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def supervisorctl(settings, *args) -> str:
    return subprocess.run(["supervisorctl", "-c", str(node_host.supervisor_conf(settings)), *args],
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def inventory(settings, lab_env, tmp_path_factory):
    """The fleet from NetBox, reached the lab's way; production paths and configless otherwise."""
    compose = {key: value for key, value in node_host.server_compose(settings).items() if key not in LAB_LAYOUT}
    compose["slurm_cluster_slurmctld_port"] = str(settings.slurm_port_base + 9999)
    path = tmp_path_factory.mktemp("slurm") / "fleet.gpucloud_netbox.yml"
    path.write_text(yaml.safe_dump({"plugin": "gpucloud_netbox", "cache": False, "compose": compose}))
    return path


def play(inventory, nodes, *extra):
    return ansible_playbook("playbooks/slurm_cluster.yml", "-i", str(inventory), "-l", ",".join(nodes),
                            "-e", f"slurm_cluster_name={NAME}", *extra)


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    return recaps(proc)


@pytest.fixture(scope="module")
def cluster(settings, lab_env, fleet, nb, inventory):
    """Projects booked in NetBox, then the triplet: check mode on nothing, apply, apply again."""
    book_projects(nb, [*NODES, ADDED])
    if SLURM_CONF.exists() or f"{NAME}-" in supervisorctl(settings, "status"):  # what a run that died left
        play(inventory, [*NODES, ADDED], "-e", "slurm_cluster_state=absent")
    runs = {"check": play(inventory, NODES, "--check", "--diff")}
    runs["wrote_in_check"] = SLURM_CONF.exists()
    runs["apply"] = play(inventory, NODES)
    runs["again"] = play(inventory, NODES)
    yield runs
    if SLURM_CONF.exists():  # test_absent... did not get to run
        play(inventory, [*NODES, ADDED], "-e", "slurm_cluster_state=absent")
    ensure_fleet(settings, lab_env, FLEET_NODES)


def test_check_then_apply_then_nothing_changes(cluster):
    check = ok(cluster["check"])
    assert not cluster["wrote_in_check"]
    assert check[H100[0]]["changed"] > 0  # it says what it would do
    applied = ok(cluster["apply"])
    assert all(applied[n]["changed"] > 0 for n in NODES)
    again = ok(cluster["again"])
    assert {n: again[n]["changed"] for n in NODES} == dict.fromkeys(NODES, 0)


def test_nodes_show_their_gpus_from_netbox(cluster):
    rows = {line.split()[0]: line.split()[1:] for line in slurm("sinfo", "-h", "-N", "-o", "%N %G %T").splitlines()}
    assert {n: rows[n][0] for n in NODES} == {n: EXPECTED_GRES[n] for n in NODES}
    assert {rows[n][1] for n in NODES} == {"idle"}
    node = slurm("scontrol", "show", "node", H100[0])
    assert "Gres=gpu:h100-sxm5-80gb:8" in node and "CfgTRES=cpu=112,mem=1992294M" in node
    parts = {line.split()[0]: line.split()[1] for line in slurm("sinfo", "-h", "-o", "%P %N").splitlines()}
    assert parts == {"batch*": f"{MI300X},{GAUDI}", "infer": "gpu-dc1-r02-k01-n[01-03]",
                     "train": "gpu-dc1-r01-k01-n[01-02]"}


def test_topology_from_leaf_spine_and_nvlink(cluster):
    switches = {m.group(1): m.group(2) for m in re.finditer(r"SwitchName=(\S+) Level=(\d+)",
                                                            slurm("scontrol", "show", "topology"))}
    assert switches == {"nvl72-dc1-r02-k01": "0", "leaf-dc1-r01": "0", "leaf-dc1-r03": "0", "leaf-dc2-r03": "0",
                        "leaf-dc1-r02": "1", "spine-dc1": "2", "spine-dc2": "1", "dc1": "3", "dc2": "2",
                        NAME: "4"}
    nvl = slurm("scontrol", "show", "topology", "nvl72-dc1-r02-k01")
    assert "Nodes=gpu-dc1-r02-k01-n[01-03]" in nvl
    assert "Switches=leaf-dc1-r[01-03]" in slurm("scontrol", "show", "topology", "spine-dc1")


def run_job(tmp_path, *args) -> str:
    out = tmp_path / "job-%j.out"
    job = slurm("sbatch", "--parsable", "-o", str(out), *args).strip()
    state = wait_until(lambda: re.search(r"JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT)",
                                         slurm("scontrol", "show", "job", job)), f"job {job} ends", timeout=90)
    text = Path(str(out).replace("%j", job)).read_text()
    assert state.group(1) == "COMPLETED", text
    return text


# Single quotes: the step's own shell, on each node, expands the variables (not the batch script's).
STEP = ("srun --ntasks-per-node=1 bash -c 'echo $SLURMD_NODENAME cuda=$CUDA_VISIBLE_DEVICES "
        "rocr=$ROCR_VISIBLE_DEVICES ze=$ZE_AFFINITY_MASK habana=$HABANA_VISIBLE_MODULES'")


def test_multi_node_gpu_job_sees_its_gpus(cluster, tmp_path):
    text = run_job(tmp_path, "-p", "train", "-N2", "--gres=gpu:h100-sxm5-80gb:8", "--wrap", STEP)
    assert sorted(line.split()[:2] for line in text.splitlines()) == [
        [n, "cuda=0,1,2,3,4,5,6,7"] for n in H100]
    text = run_job(tmp_path, "-p", "infer", "-N3", "--gres=gpu:gb200:2", "--wrap", STEP)
    assert sorted(line.split()[:2] for line in text.splitlines()) == [[n, "cuda=0,1"] for n in GB200]


@pytest.mark.parametrize(("node", "wanted"), [(MI300X, "rocr=0,1,2,3"), (GAUDI, "habana=0,1,2,3")],
                         ids=["amd", "intel-gaudi"])
def test_each_vendor_gets_its_variable(cluster, tmp_path, node, wanted):
    text = run_job(tmp_path, "-w", node, "--gres=gpu:4", "--wrap", STEP)
    assert wanted in text.split() and "cuda=" in text.split()  # only the vendor's own variable (gres Flags)


def test_health_check_drains_a_node_missing_a_gpu_and_resumes_it(cluster, settings):
    config = slurm("scontrol", "show", "config")
    assert re.search(r"HealthCheckProgram\s+= /usr/local/libexec/gpucloud/slurm-health", config)
    device = node_host.gpu_root(settings, MI300X) / "dev/dri/renderD131"
    check = ["env", "-i", f"SLURMD_NODENAME={MI300X}", "/usr/local/libexec/gpucloud/slurm-health"]
    device.rename(device.with_suffix(".away"))
    try:
        assert subprocess.run(check).returncode == 1
        node = slurm("scontrol", "show", "node", MI300X)
        assert "DRAIN" in node and f"Reason=gpucloud-health: 7/8 GPUs; no {device};" in node
    finally:
        device.with_suffix(".away").rename(device)
    assert subprocess.run(check).returncode == 0
    assert "DRAIN" not in slurm("scontrol", "show", "node", MI300X)


def test_bad_input_fails_naming_the_field_and_changes_nothing(cluster, inventory):
    before = SLURM_CONF.read_text()
    proc = play(inventory, NODES, "-e", '{"slurm_cluster_options": {"Prolog": "/bin/true SlurmUser=root"}}',
                "-e", "slurm_cluster_topology=block")
    assert proc.returncode != 0
    assert "problem(s) in the Slurm config" in proc.stdout
    assert "cluster.options.Prolog: expected one value without blanks" in proc.stdout
    assert "cluster.topology: block: topology/block needs Slurm 23.11 or later" in proc.stdout
    assert SLURM_CONF.read_text() == before


def pids(settings) -> dict[str, str]:
    return dict(re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+)", supervisorctl(settings, "status"), re.M))


def test_adding_a_node_restarts_no_slurmd_and_running_jobs_carry_on(cluster, inventory, settings, tmp_path):
    before = pids(settings)
    out = tmp_path / "long.out"
    job = slurm("sbatch", "--parsable", "-p", "train", "-w", H100[0], "-o", str(out), "--wrap",
                "sleep 12; echo survived").strip()
    wait_until(lambda: "JobState=RUNNING" in slurm("scontrol", "show", "job", job), f"job {job} runs")
    added = ok(play(inventory, [*NODES, ADDED]))
    assert added[ADDED]["changed"] > 0
    after = pids(settings)
    slurmds = [f"{NAME}-slurmd-{n}" for n in NODES]
    assert {p: after[p] for p in slurmds} == {p: before[p] for p in slurmds}  # no slurmd restarted
    assert after[f"{NAME}-slurmctld"] != before[f"{NAME}-slurmctld"]  # 22.05: a new node set needs a restart
    assert "gpu:h100-sxm5-80gb:8" in slurm("sinfo", "-h", "-N", "-n", ADDED, "-o", "%G")
    assert "Nodes=gpu-dc1-r01-k01-n[01-03]" in slurm("scontrol", "show", "topology", "leaf-dc1-r01")
    wait_until(lambda: "JobState=COMPLETED" in slurm("scontrol", "show", "job", job), f"job {job} completes", 60)
    assert out.read_text() == "survived\n"
    text = run_job(tmp_path, "-p", "train", "-N3", "--gres=gpu:1", "--wrap", STEP)
    assert sorted(line.split()[0] for line in text.splitlines()) == [*H100, ADDED]


def test_absent_stops_everything_and_removes_the_files(cluster, inventory, settings):
    gone = ok(play(inventory, [*NODES, ADDED], "-e", "slurm_cluster_state=absent"))
    assert gone[H100[0]]["changed"] > 0
    assert not [p for p in pids(settings) if p.startswith(f"{NAME}-")]
    assert not SLURM_CONF.exists() and not Path("/usr/local/libexec/gpucloud").exists()
