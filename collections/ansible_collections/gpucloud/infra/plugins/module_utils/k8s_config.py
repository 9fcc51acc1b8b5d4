# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""AVD-style structured Kubernetes config: from the cluster's settings and its nodes' NetBox facts to every file a
kubeadm cluster of GPU nodes needs, as plain data that k8s_render turns into YAML and TOML and validates.

- kubeadm (v1beta4): InitConfiguration + ClusterConfiguration + KubeletConfiguration for the first control plane,
  a JoinConfiguration per other node (control planes with certificateKey). The cluster CA is provisioned before
  init (as Cluster API does), so every join file carries its real CA hash and is complete before the cluster
  exists; the bootstrap token is fixed per cluster and re-created when it expires.
- containerd per node: runc plus the vendor's runtime (nvidia-container-runtime when the image carries NVIDIA's
  stack; habana-container-runtime for Gaudi; AMD needs none, its device plugin passes the devices).
- Node labels from NetBox topology: topology.kubernetes.io/region (site) and /zone (pod, else site), and under
  the label prefix the spine plane, leaf, rack, NVLink domain, GPU vendor/model/count, project and cluster.
- Kueue topology-aware scheduling: a Topology (region > spine plane > leaf > NVLink domain when racks share one >
  host), a ResourceFlavor per GPU model, a ClusterQueue with the cluster's resources, a LocalQueue per project
  namespace.
- Helm releases: the CNI (Calico, Cilium or Flannel), the GPU operator of each vendor present, Kueue.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.gpucloud.infra.plugins.module_utils import cluster_topology, gpu_vendors
from ansible_collections.gpucloud.infra.plugins.module_utils import k8s_schema as schema

CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
_MODEL_UNSAFE = re.compile(r"[^a-z0-9.-]+")
RUNTIME_BINARIES = {"nvidia": "/usr/bin/nvidia-container-runtime", "habana": "/usr/bin/habana-container-runtime"}
PRIVILEGED_NAMESPACES = {"gpu-operator", "kube-amd-gpu", "habana-ai-operator"}
CNI_RELEASES = {
    "calico": {"name": "calico", "repo": "projectcalico", "repo_url": "https://docs.tigera.io/calico/charts",
               "chart": "projectcalico/tigera-operator", "namespace": "tigera-operator"},
    "cilium": {"name": "cilium", "repo": "cilium", "repo_url": "https://helm.cilium.io/", "chart": "cilium/cilium",
               "namespace": "kube-system"},
    "flannel": {"name": "flannel", "repo": "flannel", "repo_url": "https://flannel-io.github.io/flannel/",
                "chart": "flannel/flannel", "namespace": "kube-flannel"},
}
OPERATOR_RELEASES = {
    "nvidia": {"name": "gpu-operator", "repo": "nvidia", "repo_url": "https://helm.ngc.nvidia.com/nvidia",
               "chart": "nvidia/gpu-operator", "namespace": "gpu-operator", "version_key": "gpu_operator"},
    "amd": {"name": "amd-gpu-operator", "repo": "rocm", "repo_url": "https://rocm.github.io/gpu-operator",
            "chart": "rocm/gpu-operator-charts", "namespace": "kube-amd-gpu", "version_key": "amd_gpu_operator"},
    "intel": {"name": "habana-ai-operator", "repo": "gaudi-helm",
              "repo_url": "https://vault.habana.ai/artifactory/api/helm/gaudi-helm",
              "chart": "gaudi-helm/habana-ai-operator", "namespace": "habana-ai-operator",
              "version_key": "gaudi_operator"},
}
CERT_MANAGER_RELEASE = {"name": "cert-manager", "repo": "jetstack", "repo_url": "https://charts.jetstack.io",
                        "chart": "jetstack/cert-manager", "namespace": "cert-manager"}  # the AMD operator needs it
TOOLKIT_DROP_IN = "/etc/containerd/conf.d/99-nvidia.toml"
KUEUE_RELEASE = {"name": "kueue", "repo": None, "repo_url": None, "chart": "oci://registry.k8s.io/kueue/charts/kueue",
                 "namespace": "kueue-system"}


class K8sConfigError(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


def model_slug(model: str) -> str:
    """NetBox's gpu_model as a label value and flavor name: H100-SXM5-80GB -> h100-sxm5-80gb."""
    return _MODEL_UNSAFE.sub("-", str(model).strip().lower()).strip("-.")


def ca_cert_hash(pem: str) -> str:
    """kubeadm's discovery hash: sha256 of the CA's DER SubjectPublicKeyInfo."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(pem.encode())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def self_signed_ca(common_name: str = "kubernetes", days: int = 1) -> str:
    """A throwaway CA certificate (PEM): check mode's stand-in before the real CA exists, and tests'."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _vendor_key(node: dict) -> str | None:
    gpu = node.get("gpu")
    return str(gpu["vendor"]).strip().lower() if gpu else None


# -- checks beyond the schema -------------------------------------------------------------------------------------

def _cross_errors(inputs: dict) -> list[str]:
    errors, cluster, nodes = [], inputs["cluster"], inputs["nodes"]
    names = [n["name"] for n in nodes]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append(f"nodes[{i}].name: {name} is also nodes[{names.index(name)}]")
    for i, node in enumerate(nodes):
        if node.get("gpu"):
            try:
                gpu_vendors.vendor(node["gpu"]["vendor"])
            except gpu_vendors.UnknownVendor as exc:
                errors.append(f"nodes[{i}].gpu.vendor: {exc}")
    errors += [f"cluster.control_planes[{i}]: {cp} is not one of the nodes"
               for i, cp in enumerate(cluster["control_planes"]) if cp not in names]
    if len(cluster["control_planes"]) % 2 == 0:
        errors.append(f"cluster.control_planes: etcd needs an odd number of members, got "
                      f"{len(cluster['control_planes'])}")
    pods, services = (ipaddress.ip_network(cluster[k], strict=False) for k in ("pod_subnet", "service_subnet"))
    if pods.overlaps(services):
        errors.append(f"cluster.pod_subnet: {pods} overlaps cluster.service_subnet {services}")
    try:
        ca_cert_hash(cluster["ca_cert_pem"])
    except ValueError as exc:
        errors.append(f"cluster.ca_cert_pem: not a PEM certificate ({exc})")
    return errors


# -- per node --------------------------------------------------------------------------------------------------------

def _labels(cluster: dict, node: dict, place: dict) -> dict[str, str]:
    p = cluster["label_prefix"]
    labels = {"topology.kubernetes.io/region": place["site"],
              "topology.kubernetes.io/zone": place["pod"] or place["site"],
              f"{p}/cluster": cluster["name"]}
    optional = {f"{p}/tenant": cluster.get("tenant"), f"{p}/spine-plane": place["plane"], f"{p}/leaf": place["leaf"],
                f"{p}/rack": node.get("rack"), f"{p}/nvlink-domain": node.get("nvlink_domain"),
                f"{p}/project": node.get("project")}
    gpu = node.get("gpu")
    if gpu:
        optional |= {f"{p}/gpu-vendor": _vendor_key(node), f"{p}/gpu-model": model_slug(gpu["model"]),
                     f"{p}/gpu-count": str(gpu["count"])}
    else:
        optional[f"{p}/gpu-model"] = "none"
    return labels | {k: str(v) for k, v in optional.items() if v not in (None, "")}


def _taints(cluster: dict, node: dict, control_plane: bool) -> list[dict]:
    """A GPU taint keeps CPU-only pods off GPU nodes, so it only means something where the cluster also has nodes
    without GPUs (cluster["_mixed"]); it never goes on a control plane, whose add-ons (CoreDNS, the operators,
    Kueue) tolerate no GPU taint."""
    taints = []
    if control_plane and not cluster["control_plane_schedulable"]:
        taints.append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
    if cluster["gpu_taint"] and cluster["_mixed"] and node.get("gpu") and not control_plane:
        taints.append({"key": gpu_vendors.vendor(node["gpu"]["vendor"])["resource"], "value": "present",
                       "effect": "NoSchedule"})
    return taints


def _registration(cluster: dict, node: dict, labels: dict, control_plane: bool) -> dict:
    # kubelet may label itself only in its own namespaces and topology.kubernetes.io; the prefix is the operator's.
    node_labels = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return {"name": node["name"], "criSocket": CRI_SOCKET, "taints": _taints(cluster, node, control_plane),
            "kubeletExtraArgs": [{"name": "node-ip", "value": node["address"]},
                                 {"name": "node-labels", "value": node_labels}]}


def _runtimes(cluster: dict, node: dict) -> dict:
    vendor = _vendor_key(node)
    runtime = gpu_vendors.vendor(vendor)["runtime"] if vendor else None
    if runtime == "nvidia" and cluster["nvidia_stack"] == "operator":
        runtime = None  # the GPU operator's toolkit configures containerd itself
    runtimes = {"runc": {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True}}}
    if runtime:
        runtimes[runtime] = {"runtime_type": "io.containerd.runc.v2",
                             "options": {"BinaryName": RUNTIME_BINARIES[runtime], "SystemdCgroup": True}}
    return {"version": cluster["containerd_config_version"], "default_runtime_name": runtime or "runc",
            "runtimes": runtimes}


# -- kubeadm ---------------------------------------------------------------------------------------------------------

def _endpoint(cluster: dict, by_name: dict) -> str:
    first = by_name[cluster["control_planes"][0]]
    return cluster.get("api_endpoint") or f"{first['address']}:{cluster['api_port']}"


def _kubeadm(cluster: dict, nodes: list[dict], labels: dict, by_name: dict) -> dict[str, list[dict]]:
    endpoint, first = _endpoint(cluster, by_name), by_name[cluster["control_planes"][0]]
    api = lambda n: {"advertiseAddress": n["address"], "bindPort": cluster["api_port"]}  # noqa: E731
    init = {"apiVersion": schema.KUBEADM, "kind": "InitConfiguration",
            "bootstrapTokens": [{"token": cluster["bootstrap_token"], "ttl": "24h",
                                 "usages": ["signing", "authentication"],
                                 "groups": ["system:bootstrappers:kubeadm:default-node-token"]}],
            "nodeRegistration": _registration(cluster, first, labels[first["name"]], True),
            "localAPIEndpoint": api(first), "certificateKey": cluster["certificate_key"]}
    config = {"apiVersion": schema.KUBEADM, "kind": "ClusterConfiguration", "clusterName": cluster["name"],
              "kubernetesVersion": cluster["kubernetes_version"], "controlPlaneEndpoint": endpoint,
              "networking": {"podSubnet": cluster["pod_subnet"], "serviceSubnet": cluster["service_subnet"],
                             "dnsDomain": cluster["dns_domain"]},
              "proxy": {"disabled": cluster["cni"] == "cilium"},  # Cilium replaces kube-proxy
              "apiServer": {"certSANs": sorted({by_name[c]["address"] for c in cluster["control_planes"]})}}
    kubelet = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
               "cgroupDriver": "systemd", "topologyManagerPolicy": cluster["topology_manager_policy"],
               "containerRuntimeEndpoint": CRI_SOCKET}
    docs = {"cluster/kubeadm-init.yaml": [init, config, kubelet]}
    ca_hash = ca_cert_hash(cluster["ca_cert_pem"])
    for node in nodes:
        if node["name"] == first["name"]:
            continue
        control_plane = node["name"] in cluster["control_planes"]
        join = {"apiVersion": schema.KUBEADM, "kind": "JoinConfiguration",
                "discovery": {"bootstrapToken": {"apiServerEndpoint": endpoint, "token": cluster["bootstrap_token"],
                                                 "caCertHashes": [ca_hash]}},
                "nodeRegistration": _registration(cluster, node, labels[node["name"]], control_plane)}
        if control_plane:
            join["controlPlane"] = {"localAPIEndpoint": api(node), "certificateKey": cluster["certificate_key"]}
        docs[f"nodes/{node['name']}/kubeadm-join.yaml"] = [join]
    return docs


# -- CNI, operators, Kueue -----------------------------------------------------------------------------------------

def _cni_values(cluster: dict, by_name: dict) -> dict:
    if cluster["cni"] == "calico":
        return {"installation": {"cni": {"type": "Calico"}, "calicoNetwork": {"ipPools": [{
            "name": "default-ipv4-ippool", "cidr": cluster["pod_subnet"], "blockSize": 26,
            "encapsulation": "VXLANCrossSubnet", "natOutgoing": "Enabled", "nodeSelector": "all()"}]}}}
    if cluster["cni"] == "cilium":
        host, port = _endpoint(cluster, by_name).rsplit(":", 1)
        return {"kubeProxyReplacement": True, "k8sServiceHost": host, "k8sServicePort": int(port),
                "ipam": {"mode": "cluster-pool", "operator": {"clusterPoolIPv4PodCIDRList": [cluster["pod_subnet"]],
                                                              "clusterPoolIPv4MaskSize": 24}}}
    return {"podCidr": cluster["pod_subnet"]}


def _operator_values(cluster: dict, vendor: str, vendors: list[str]) -> dict:
    if vendor == "nvidia":
        host = cluster["nvidia_stack"] == "host"  # the golden image carries driver and container toolkit
        toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        # The toolkit writes its runtime into a drop-in containerd imports, not into the config gpucloud writes.
        toolkit = {"enabled": False} if host else {
            "enabled": True, "env": [{"name": "CONTAINERD_CONFIG", "value": TOOLKIT_DROP_IN}]}
        return {"driver": {"enabled": not host}, "toolkit": toolkit, "nfd": {"enabled": True},
                "gfd": {"enabled": True}, "dcgmExporter": {"enabled": True}, "mig": {"strategy": "single"},
                "cdi": {"enabled": True}, "operator": {"runtimeClass": "nvidia"},
                "daemonsets": {"tolerations": [toleration]}}
    if vendor == "amd":
        # the DeviceConfig is gpucloud's (manifests/amd-deviceconfig.yaml), not the chart's default one; one node
        # feature discovery per cluster: NVIDIA's operator brings its own when both vendors are there
        return {"node-feature-discovery": {"enabled": "nvidia" not in vendors}, "kmm": {"enabled": True},
                "crds": {"defaultCR": {"install": False}}}
    return {}


def _releases(cluster: dict, vendors: list[str], by_name: dict) -> list[dict]:
    versions = cluster["versions"]
    cni = CNI_RELEASES[cluster["cni"]]
    releases = [{**cni, "version": versions[cluster["cni"]], "values": _cni_values(cluster, by_name)}]
    if "amd" in vendors:
        releases.append({**CERT_MANAGER_RELEASE, "version": versions["cert_manager"], "values": {"crds": {
            "enabled": True}}})
    for vendor in vendors:
        spec = OPERATOR_RELEASES[vendor]
        releases.append({k: v for k, v in spec.items() if k != "version_key"}
                        | {"version": versions[spec["version_key"]],
                           "values": _operator_values(cluster, vendor, vendors)})
    releases.append({**KUEUE_RELEASE, "version": versions["kueue"], "values": {}})
    return releases


def _kueue(cluster: dict, nodes: list[dict], topo: dict, namespaces: list[str]) -> list[dict]:
    p, name = cluster["label_prefix"], cluster["name"]
    levels = ["topology.kubernetes.io/region", f"{p}/spine-plane", f"{p}/leaf"]
    if topo["domains"]:  # racks whose trays share an NVLink domain: pack a job into one
        levels.append(f"{p}/nvlink-domain")
    levels.append("kubernetes.io/hostname")  # Kueue wants the host last
    docs = [{"apiVersion": schema.KUEUE, "kind": "Topology", "metadata": {"name": name},
             "spec": {"levels": [{"nodeLabel": level} for level in levels]}}]
    resources = sorted({gpu_vendors.vendor(n["gpu"]["vendor"])["resource"] for n in nodes if n.get("gpu")})
    covered = ["cpu", "memory", *resources]
    by_flavor: dict[str, list[dict]] = {}
    for node in nodes:
        by_flavor.setdefault(model_slug(node["gpu"]["model"]) if node.get("gpu") else "cpu-only", []).append(node)
    flavors = []
    for flavor, members in sorted(by_flavor.items()):
        spec = {"nodeLabels": {f"{p}/gpu-model": "none" if flavor == "cpu-only" else flavor}, "topologyName": name}
        if cluster["gpu_taint"] and cluster["_mixed"] and flavor != "cpu-only":
            spec["tolerations"] = [{"key": gpu_vendors.vendor(members[0]["gpu"]["vendor"])["resource"],
                                    "operator": "Exists", "effect": "NoSchedule"}]
        docs.append({"apiVersion": schema.KUEUE, "kind": "ResourceFlavor", "metadata": {"name": flavor},
                     "spec": spec})
        quota = {"cpu": sum(n["cpus"] for n in members), "memory": f"{int(sum(n['memory_gb'] for n in members))}Gi"}
        for node in members:
            if node.get("gpu"):
                resource = gpu_vendors.vendor(node["gpu"]["vendor"])["resource"]
                quota[resource] = quota.get(resource, 0) + node["gpu"]["count"]
        flavors.append({"name": flavor, "resources": [{"name": r, "nominalQuota": quota.get(r, 0)} for r in covered]})
    docs.append({"apiVersion": schema.KUEUE, "kind": "ClusterQueue", "metadata": {"name": name},
                 "spec": {"namespaceSelector": {"matchLabels": {f"{p}/cluster": name}},
                          "queueingStrategy": "BestEffortFIFO",
                          "resourceGroups": [{"coveredResources": covered, "flavors": flavors}]}})
    docs += [{"apiVersion": schema.KUEUE, "kind": "LocalQueue", "metadata": {"name": ns, "namespace": ns},
              "spec": {"clusterQueue": name}} for ns in namespaces]
    return docs


def _namespaces(cluster: dict, projects: list[str], vendors: list[str]) -> list[dict]:
    p = cluster["label_prefix"]
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
        f"{p}/cluster": cluster["name"], f"{p}/project": ns}}} for ns in projects]
    for vendor in vendors:  # the operators run privileged pods (drivers, device plugins)
        ns = OPERATOR_RELEASES[vendor]["namespace"]
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}})
    return docs


def _device_config(cluster: dict) -> dict:
    return {"apiVersion": "amd.com/v1alpha1", "kind": "DeviceConfig",
            "metadata": {"name": "default", "namespace": OPERATOR_RELEASES["amd"]["namespace"]},
            "spec": {"selector": {f"{cluster['label_prefix']}/gpu-vendor": "amd"},
                     "driver": {"enable": False},  # the golden image carries amdgpu
                     "devicePlugin": {"enableDevicePlugin": True, "enableNodeLabeller": True},
                     "metricsExporter": {"enable": True}}}


# -- the whole config ----------------------------------------------------------------------------------------------

def build(inputs: dict) -> dict:
    """{documents: {path: [doc]}, containerd: {node: spec}, releases: [...], labels: {node: labels},
    secret_files: [path]}; K8sConfigError lists every problem at once."""
    errors = schema.errors(inputs, schema.INPUT)
    if errors:
        raise K8sConfigError(schema.named(errors, inputs.get("nodes") if isinstance(inputs, dict) else None))
    errors = _cross_errors(inputs)
    if errors:
        raise K8sConfigError(schema.named(errors, inputs["nodes"]))
    nodes = sorted(inputs["nodes"], key=lambda n: n["name"])
    cluster = {**inputs["cluster"], "_mixed": any(not n.get("gpu") for n in nodes)}
    by_name = {n["name"]: n for n in nodes}
    topology = inputs.get("topology") or {}
    topo = cluster_topology.build([{k: n.get(k) for k in ("name", "site", "location", "leaf", "nvlink_domain")}
                                   for n in nodes], topology.get("spines"), topology.get("pods"))
    labels = {n["name"]: _labels(cluster, n, topo["nodes"][n["name"]]) for n in nodes}
    vendors = sorted({_vendor_key(n) for n in nodes if n.get("gpu")})
    namespaces = sorted({n["project"] for n in nodes if n.get("project")}) or [cluster["default_namespace"]]
    documents = _kubeadm(cluster, nodes, labels, by_name)
    documents["cluster/manifests/namespaces.yaml"] = _namespaces(cluster, namespaces, vendors)
    documents["cluster/manifests/node-labels.yaml"] = [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": labels[n]}} for n in sorted(labels)]
    documents["cluster/manifests/kueue.yaml"] = _kueue(cluster, nodes, topo, namespaces)
    if "amd" in vendors:
        documents["cluster/manifests/amd-deviceconfig.yaml"] = [_device_config(cluster)]
    return {"documents": documents, "containerd": {n["name"]: _runtimes(cluster, n) for n in nodes},
            "releases": _releases(cluster, vendors, by_name), "labels": labels,
            "secret_files": sorted(p for p in documents if "kubeadm" in p), "unplaced": topo["unplaced"]}
