"""The k8s_cluster role renders and validates a GPU cluster's Kubernetes config from NetBox, for the same nodes the
Slurm test deploys (tests/cluster_nodes.py). No control plane can run here (k8s_cluster_apply false): the files are
validated offline, again here, independently of the role (Kubernetes' own schemas for built-in kinds).
"""

import stat

import pytest
import yaml

from ansible_collections.gpucloud.infra.plugins.module_utils import k8s_render
from cluster_nodes import GAUDI, GB200, H100, MI300X, NODES, book_projects
from conftest import FLEET_NODES, ansible_playbook, recaps
from lab import node_host
from lab.seed import ensure_fleet

pytestmark = [pytest.mark.netbox, pytest.mark.slow]

NAME = "citest-k8s"


@pytest.fixture(scope="module")
def inventory(settings, lab_env, tmp_path_factory):
    compose = {k: node_host.server_compose(settings)[k] for k in ("ansible_connection", "ansible_python_interpreter")}
    path = tmp_path_factory.mktemp("k8s") / "fleet.gpucloud_netbox.yml"
    path.write_text(yaml.safe_dump({"plugin": "gpucloud_netbox", "cache": False, "compose": compose}))
    return path


@pytest.fixture(scope="module")
def render_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("k8s-render") / NAME


def play(inventory, render_dir, nodes, *extra):
    return ansible_playbook("playbooks/k8s_cluster.yml", "-i", str(inventory), "-l", ",".join(nodes), "-v",
                            "-e", f"k8s_cluster_name={NAME}", "-e", "k8s_cluster_tenant=acme",
                            "-e", "k8s_cluster_apply=false", "-e", f"k8s_cluster_render_dir={render_dir}", *extra)


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    return recaps(proc)


@pytest.fixture(scope="module")
def runs(settings, lab_env, fleet, nb, inventory, render_dir):
    book_projects(nb, NODES)
    out = {"check": play(inventory, render_dir, NODES, "--check", "--diff")}
    out["wrote_in_check"] = render_dir.exists()
    out["apply"] = play(inventory, render_dir, NODES, "--diff")
    out["again"] = play(inventory, render_dir, NODES, "--diff")
    yield out
    ensure_fleet(settings, lab_env, FLEET_NODES)


def files_of(render_dir) -> dict[str, str]:
    return {str(p.relative_to(render_dir)): p.read_text() for p in render_dir.rglob("*")
            if p.is_file() and "pki" not in p.parts and not p.name.startswith(".")}


def test_check_then_render_then_nothing_changes(runs, render_dir):
    assert ok(runs["check"])[H100[0]]["changed"] > 0 and not runs["wrote_in_check"]
    assert ok(runs["apply"])[H100[0]]["changed"] > 0
    assert {n: c["changed"] for n, c in ok(runs["again"]).items()} == dict.fromkeys(NODES, 0)
    assert stat.S_IMODE(render_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in render_dir.rglob("*") if p.is_file())


def test_the_files_validate_offline(runs, render_dir):
    files = files_of(render_dir)
    assert k8s_render.check(files, "v1.33.4") == []
    assert sorted(p for p in files if p.startswith("nodes/")) == sorted(
        [f"nodes/{n}/containerd.toml" for n in NODES] + [f"nodes/{n}/kubeadm-join.yaml" for n in NODES[1:]])
    releases = yaml.safe_load(files["cluster/helm/releases.yaml"].split("---", 1)[1])["releases"]
    assert [r["name"] for r in releases] == ["calico", "cert-manager", "amd-gpu-operator", "habana-ai-operator",
                                             "gpu-operator", "kueue"]


def test_node_labels_and_kueue_follow_netbox(runs, render_dir):
    labels = {d["metadata"]["name"]: d["metadata"]["labels"] for d in yaml.safe_load_all(
        (render_dir / "cluster/manifests/node-labels.yaml").read_text()) if d}
    assert {n: labels[n]["gpucloud.io/leaf"] for n in (H100[0], GB200[0], MI300X, GAUDI)} == {
        H100[0]: "leaf-dc1-r01", GB200[0]: "leaf-dc1-r02", MI300X: "leaf-dc1-r03", GAUDI: "leaf-dc2-r03"}
    assert {labels[n]["gpucloud.io/spine-plane"] for n in NODES} == {"spine-dc1", "spine-dc2"}  # from the cables
    assert {labels[n]["gpucloud.io/nvlink-domain"] for n in GB200} == {"nvl72-dc1-r02-k01"}
    assert labels[H100[0]]["gpucloud.io/project"] == "train" and labels[GAUDI]["topology.kubernetes.io/region"] == "dc2"
    kueue = [d for d in yaml.safe_load_all((render_dir / "cluster/manifests/kueue.yaml").read_text()) if d]
    levels = [lv["nodeLabel"] for lv in kueue[0]["spec"]["levels"]]
    assert levels[-2:] == ["gpucloud.io/nvlink-domain", "kubernetes.io/hostname"]  # the NVL72 trays share one
    assert sorted(d["metadata"]["name"] for d in kueue if d["kind"] == "LocalQueue") == ["infer", "train"]


def test_secrets_stay_on_the_controller(runs, render_dir):
    token = (render_dir / "pki/bootstrap-token").read_text()
    key = (render_dir / "pki/certificate-key").read_text()
    assert token in (render_dir / "cluster/kubeadm-init.yaml").read_text()
    for proc in (runs["check"], runs["apply"], runs["again"]):  # -v and --diff: every result and diff
        assert token not in proc.stdout + proc.stderr and key not in proc.stdout + proc.stderr
    assert "(holds secrets: changed, not shown)" in runs["apply"].stdout  # kubeadm's files: no content in diffs


def test_a_node_leaving_takes_its_files(runs, inventory, render_dir):
    ok(play(inventory, render_dir, [n for n in NODES if n != GAUDI]))
    assert not (render_dir / f"nodes/{GAUDI}").exists() or not list((render_dir / f"nodes/{GAUDI}").iterdir())
    assert "habana-ai-operator" not in (render_dir / "cluster/helm/releases.yaml").read_text()


def test_bad_input_fails_naming_the_field(runs, inventory, render_dir):
    proc = play(inventory, render_dir, NODES, "-e", "k8s_cluster_pod_subnet=10.96.0.0/16")
    assert proc.returncode != 0
    assert "cluster.pod_subnet: 10.96.0.0/16 overlaps cluster.service_subnet 10.96.0.0/12" in proc.stdout


def test_absent_removes_the_files_and_secrets(runs, inventory, render_dir):
    ok(play(inventory, render_dir, NODES, "-e", "k8s_cluster_state=absent"))
    assert not render_dir.exists()
