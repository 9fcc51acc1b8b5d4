"""The Kubernetes config builder (gpucloud.infra.k8s_config) and its offline validation, without services.

No control plane can run here, so what a cluster would refuse is checked offline: built-in kinds against
Kubernetes' own strict schemas (kubernetes-validate), kubeadm, kubelet, Kueue and AMD kinds and the Helm values
against closed schemas, containerd's TOML parsed, and the cross-document rules. Data-driven: each broken file must
be refused naming what is wrong. tests/test_k8s_cluster.py renders the same through the role from NetBox.
"""

import tomllib

import kubernetes_validate
import pytest
import yaml

from ansible_collections.gpucloud.infra.plugins.module_utils import k8s_config, k8s_render

CA = k8s_config.self_signed_ca(days=10)
TOKEN = "abcdef.0123456789abcdef"
CLUSTER = {
    "name": "acme-infer", "tenant": "acme", "kubernetes_version": "v1.33.4", "control_planes": ["gpu-n01"],
    "api_port": 6443, "pod_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12", "dns_domain": "cluster.local",
    "cni": "calico", "containerd_config_version": 2, "nvidia_stack": "host", "gpu_taint": True,
    "control_plane_schedulable": True, "topology_manager_policy": "best-effort", "label_prefix": "gpucloud.io",
    "default_namespace": "default", "ca_cert_pem": CA, "bootstrap_token": TOKEN, "certificate_key": "c" * 64,
    "versions": {"gpu_operator": "v25.10.1", "amd_gpu_operator": "v1.5.1", "gaudi_operator": "1.23.0",
                 "cert_manager": "v1.18.2",
                 "calico": "v3.30.3", "cilium": "1.18.2", "flannel": "v0.27.4", "kueue": "0.19.2"},
}
SPINES = {leaf: ["spine-dc1-1", "spine-dc1-2"] for leaf in ("leaf-r1", "leaf-r2", "leaf-r3")}


def node(i, vendor="NVIDIA", model="H100-SXM5-80GB", count=8, leaf="leaf-r1", domain=None, project="train"):
    return {"name": f"gpu-n{i:02d}", "address": f"10.1.0.{i}", "cpus": 112, "memory_gb": 2048,
            "gpu": {"vendor": vendor, "model": model, "count": count}, "project": project, "site": "dc1",
            "location": "dc1-row01", "rack": f"r{i:02d}", "leaf": leaf, "nvlink_domain": domain or f"nvl8-n{i}"}


def build(nodes, **cluster):
    return k8s_config.build({"cluster": {**CLUSTER, **cluster}, "nodes": nodes, "topology": {"spines": SPINES}})


def rendered(nodes, **cluster):
    files = k8s_render.render(build(nodes, **cluster), cluster.get("name", CLUSTER["name"]))
    assert k8s_render.check(files, cluster.get("kubernetes_version", CLUSTER["kubernetes_version"])) == []
    return files


def docs(files, path):
    return [d for d in yaml.safe_load_all(files[path]) if d]


MIXED = [node(1), node(2), node(3, "AMD", "MI300X", leaf="leaf-r2", project="infer"),
         node(4, "Intel", "Gaudi3", leaf="leaf-r3", project=None)]


# -- what is rendered ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cni", ["calico", "cilium", "flannel"])
@pytest.mark.parametrize("containerd", [2, 3])
def test_every_vendor_cni_and_containerd_format_validates(cni, containerd):
    files = rendered(MIXED, cni=cni, containerd_config_version=containerd)
    releases = docs(files, "cluster/helm/releases.yaml")[0]["releases"]
    assert [r["name"] for r in releases] == [cni, "cert-manager", "amd-gpu-operator", "habana-ai-operator",
                                             "gpu-operator", "kueue"]
    config = docs(files, "cluster/kubeadm-init.yaml")[1]
    assert config["proxy"] == {"disabled": cni == "cilium"}  # Cilium replaces kube-proxy


def test_containerd_runtime_per_vendor():
    files = rendered(MIXED)
    runtimes = {n: tomllib.loads(files[f"nodes/gpu-n0{i}/containerd.toml"])["plugins"]["io.containerd.grpc.v1.cri"]
                ["containerd"] for i, n in ((1, "nvidia"), (3, "amd"), (4, "intel"))}
    assert runtimes["nvidia"]["default_runtime_name"] == "nvidia"
    assert runtimes["nvidia"]["runtimes"]["nvidia"]["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert runtimes["amd"]["default_runtime_name"] == "runc" and set(runtimes["amd"]["runtimes"]) == {"runc"}
    assert runtimes["intel"]["runtimes"]["habana"]["options"]["BinaryName"] == "/usr/bin/habana-container-runtime"
    operator = rendered([node(1)], nvidia_stack="operator")  # the operator's toolkit configures containerd
    assert "nvidia" not in operator["nodes/gpu-n01/containerd.toml"]
    values = docs(operator, "cluster/helm/gpu-operator-values.yaml")[0]
    assert values["driver"] == {"enabled": True} and values["toolkit"]["enabled"] is True


def test_node_labels_come_from_netbox_topology():
    labels = build(MIXED)["labels"]
    assert labels["gpu-n03"] == {
        "topology.kubernetes.io/region": "dc1", "topology.kubernetes.io/zone": "dc1",
        "gpucloud.io/cluster": "acme-infer", "gpucloud.io/tenant": "acme", "gpucloud.io/spine-plane": "spine-dc1",
        "gpucloud.io/leaf": "leaf-r2", "gpucloud.io/rack": "r03", "gpucloud.io/nvlink-domain": "nvl8-n3",
        "gpucloud.io/project": "infer", "gpucloud.io/gpu-vendor": "amd", "gpucloud.io/gpu-model": "mi300x",
        "gpucloud.io/gpu-count": "8"}
    files = rendered(MIXED)
    join = docs(files, "nodes/gpu-n03/kubeadm-join.yaml")[0]
    args = {a["name"]: a["value"] for a in join["nodeRegistration"]["kubeletExtraArgs"]}
    assert "gpucloud.io/leaf=leaf-r2" in args["node-labels"] and args["node-ip"] == "10.1.0.3"
    assert join["nodeRegistration"]["taints"] == []  # every node has GPUs: a GPU taint would keep nothing off
    assert docs(files, "cluster/manifests/node-labels.yaml")[2]["metadata"]["labels"] == labels["gpu-n03"]


def test_gpu_taints_only_beside_cpu_nodes_and_never_on_control_planes():
    cpu = {**node(5), "gpu": None, "project": None}
    files = rendered([node(1), node(2), cpu])
    init = docs(files, "cluster/kubeadm-init.yaml")[0]
    assert init["nodeRegistration"]["taints"] == []  # the control plane's add-ons tolerate no GPU taint
    worker = docs(files, "nodes/gpu-n02/kubeadm-join.yaml")[0]["nodeRegistration"]["taints"]
    assert worker == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert docs(files, "nodes/gpu-n05/kubeadm-join.yaml")[0]["nodeRegistration"]["taints"] == []
    flavors = {d["metadata"]["name"]: d["spec"] for d in docs(files, "cluster/manifests/kueue.yaml")
               if d["kind"] == "ResourceFlavor"}
    assert flavors["h100-sxm5-80gb"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                          "effect": "NoSchedule"}]
    assert flavors["cpu-only"] == {"nodeLabels": {"gpucloud.io/gpu-model": "none"}, "topologyName": "acme-infer"}


def test_one_node_feature_discovery_and_the_toolkit_beside_gpucloud_config():
    values = {n: docs(rendered(MIXED, nvidia_stack="operator"), f"cluster/helm/{n}-values.yaml")[0]
              for n in ("gpu-operator", "amd-gpu-operator")}
    assert values["gpu-operator"]["nfd"] == {"enabled": True}
    assert values["amd-gpu-operator"]["node-feature-discovery"] == {"enabled": False}
    assert values["gpu-operator"]["toolkit"]["env"] == [{"name": "CONTAINERD_CONFIG",
                                                         "value": "/etc/containerd/conf.d/99-nvidia.toml"}]
    assert 'imports = ["/etc/containerd/conf.d/*.toml"]' in rendered(MIXED)["nodes/gpu-n01/containerd.toml"]


def test_kueue_topology_flavors_and_queues():
    nvl = [node(i, model="GB200", count=4, leaf="leaf-r2", domain="nvl72-r2") for i in range(1, 5)]
    kueue = {(d["kind"], d["metadata"]["name"]): d for d in docs(rendered(nvl), "cluster/manifests/kueue.yaml")}
    assert [lv["nodeLabel"] for lv in kueue[("Topology", "acme-infer")]["spec"]["levels"]] == [
        "topology.kubernetes.io/region", "gpucloud.io/spine-plane", "gpucloud.io/leaf", "gpucloud.io/nvlink-domain",
        "kubernetes.io/hostname"]
    queue = kueue[("ClusterQueue", "acme-infer")]["spec"]
    assert queue["resourceGroups"][0]["flavors"] == [{"name": "gb200", "resources": [
        {"name": "cpu", "nominalQuota": 448}, {"name": "memory", "nominalQuota": "8192Gi"},
        {"name": "nvidia.com/gpu", "nominalQuota": 16}]}]
    assert kueue[("LocalQueue", "train")]["spec"] == {"clusterQueue": "acme-infer"}
    hgx = {d["metadata"]["name"]: d for d in docs(rendered(MIXED), "cluster/manifests/kueue.yaml")
           if d["kind"] == "Topology"}
    assert "gpucloud.io/nvlink-domain" not in str(hgx)  # one server per NVLink domain: no level for it


def test_ha_control_plane_joins_with_the_ca_hash():
    files = rendered([node(i) for i in range(1, 5)], control_planes=["gpu-n01", "gpu-n02", "gpu-n03"],
                     api_endpoint="k8s.acme.example:6443")
    joins = {n: docs(files, f"nodes/{n}/kubeadm-join.yaml")[0] for n in ("gpu-n02", "gpu-n04")}
    assert joins["gpu-n02"]["controlPlane"]["certificateKey"] == "c" * 64 and "controlPlane" not in joins["gpu-n04"]
    discovery = joins["gpu-n04"]["discovery"]["bootstrapToken"]
    assert discovery == {"apiServerEndpoint": "k8s.acme.example:6443", "token": TOKEN,
                         "caCertHashes": [k8s_config.ca_cert_hash(CA)]}
    init = docs(files, "cluster/kubeadm-init.yaml")
    assert init[0]["certificateKey"] == "c" * 64 and init[1]["controlPlaneEndpoint"] == "k8s.acme.example:6443"


def test_builtin_kinds_pass_kubernetes_own_schemas():
    files = rendered(MIXED)
    for path in ("cluster/manifests/namespaces.yaml", "cluster/manifests/node-labels.yaml"):
        for doc in docs(files, path):
            assert kubernetes_validate.validate(doc, "1.33", strict=True) == "1.33"
    namespaces = {d["metadata"]["name"]: d["metadata"]["labels"]
                  for d in docs(files, "cluster/manifests/namespaces.yaml")}
    assert namespaces["gpu-operator"] == {"pod-security.kubernetes.io/enforce": "privileged"}
    assert namespaces["infer"]["gpucloud.io/cluster"] == "acme-infer"


# -- what the validator refuses ------------------------------------------------------------------------------------

GOOD = rendered(MIXED)
BROKEN = [
    ("kubeadm-unknown-field", "cluster/kubeadm-init.yaml", ("  dnsDomain: cluster.local", "  dnsDomian: cluster.local"),
     "ClusterConfiguration: networking: Additional properties are not allowed ('dnsDomian' was unexpected)"),
    ("kubelet-cgroupfs", "cluster/kubeadm-init.yaml", ("cgroupDriver: systemd", "cgroupDriver: cgroupfs"),
     "cgroupDriver: 'systemd' was expected"),
    ("join-token", "nodes/gpu-n02/kubeadm-join.yaml", (f"token: {TOKEN}", "token: zzzzzz.0123456789abcdef"),
     "JoinConfiguration of gpu-n02: token differs from the init's"),
    ("bad-label-value", "cluster/manifests/node-labels.yaml",
     ("gpucloud.io/leaf: leaf-r1", "gpucloud.io/leaf: leaf r1"),
     "metadata.labels.gpucloud.io/leaf: expected a label value"),
    ("namespace-name", "cluster/manifests/namespaces.yaml", ("name: train", "name: train.a"),
     "Namespace/train.a: metadata.name: expected a DNS label"),
    ("host-not-last", "cluster/manifests/kueue.yaml", ("  - nodeLabel: topology.kubernetes.io/region\n",
                                                       "  - nodeLabel: kubernetes.io/hostname\n"),
     "Topology acme-infer: kubernetes.io/hostname must be the last level"),
    ("flavor-resources", "cluster/manifests/kueue.yaml", ("      - name: amd.com/gpu\n        nominalQuota: 0\n", ""),
     "flavor gaudi3 must list exactly"),
    ("queue-missing", "cluster/manifests/kueue.yaml", ("clusterQueue: acme-infer", "clusterQueue: nobody"),
     "LocalQueue infer: no ClusterQueue nobody"),
    ("cni-cidr", "cluster/helm/calico-values.yaml", ("cidr: 10.244.0.0/16", "cidr: 192.168.0.0/16"),
     "pod CIDR 192.168.0.0/16 is not inside kubeadm's podSubnet 10.244.0.0/16"),
    ("operator-values", "cluster/helm/gpu-operator-values.yaml", ("strategy: single", "strategy: some"),
     "mig.strategy: 'some' is not one of"),
    ("containerd-default", "nodes/gpu-n01/containerd.toml", ('default_runtime_name = "nvidia"',
                                                             'default_runtime_name = "kata"'),
     "default_runtime_name 'kata' is no runtime"),
    ("containerd-toml", "nodes/gpu-n01/containerd.toml", ("version = 2", "version = = 2"), "not TOML"),
]


@pytest.mark.parametrize(("path", "change", "expected"), [(p, c, e) for _i, p, c, e in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_validator_refuses(path, change, expected):
    files = dict(GOOD)
    assert change[0] in files[path], files[path]
    files[path] = files[path].replace(change[0], change[1], 1)
    errors = k8s_render.check(files, "v1.33.4")
    assert errors, "accepted"
    if expected:
        assert any(expected in e for e in errors), errors


def test_every_input_error_at_once():
    with pytest.raises(k8s_config.K8sConfigError) as err:
        build([node(1), {**node(2), "name": "GPU_N02"}, {**node(3), "cpus": 0}], cni="weave",
              kubernetes_version="1.33", bootstrap_token="short")
    text = "\n".join(err.value.errors)
    for expected in ["cluster.bootstrap_token: expected a bootstrap token", "cluster.cni: 'weave' is not one of",
                     "cluster.kubernetes_version: expected a Kubernetes version like v1.33.4, got '1.33'",
                     "nodes[1] (GPU_N02).name: expected a DNS subdomain", "nodes[2] (gpu-n03).cpus: 0 is less than"]:
        assert expected in text


def test_cluster_shape_errors():
    with pytest.raises(k8s_config.K8sConfigError) as err:
        build([node(1), node(2), node(3, vendor="Acme")], control_planes=["gpu-n01", "gpu-n09"],
              service_subnet="10.244.128.0/20", ca_cert_pem="-----BEGIN CERTIFICATE-----\nnope\n")
    assert err.value.errors == [
        "nodes[2] (gpu-n03).gpu.vendor: expected a GPU vendor of amd, intel, nvidia, got 'Acme'",
        "cluster.control_planes[1]: gpu-n09 is not one of the nodes",
        "cluster.control_planes: etcd needs an odd number of members, got 2",
        "cluster.pod_subnet: 10.244.0.0/16 overlaps cluster.service_subnet 10.244.128.0/20",
        err.value.errors[-1]]
    assert err.value.errors[-1].startswith("cluster.ca_cert_pem: not a PEM certificate")
