# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""JSON schemas of the Kubernetes layer: the input (settings and the nodes' NetBox facts), and the documents no
schema ships for offline: kubeadm's config API (kubeadm.k8s.io/v1beta4), KubeletConfiguration, Kueue's Topology /
ResourceFlavor / ClusterQueue / LocalQueue (kueue.x-k8s.io/v1beta2), AMD's DeviceConfig, and the Helm values the
role sets for the GPU operators and CNIs, each the subset gpucloud renders, closed (additionalProperties: false)
so a misspelt key fails here instead of being dropped by an API server. Built-in kinds are checked against
Kubernetes' own schemas (kubernetes-validate) in k8s_render.
"""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils.schema import array, errors, expected, named, obj

__all__ = ["DOCUMENTS", "INPUT", "VALUES", "errors", "named"]

NAME = expected({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", "maxLength": 253},
                "a name of letters, digits, '_', '.' or '-'")
DNS_LABEL = expected({"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
                     "a DNS label (lower-case letters, digits and '-', at most 63)")
DNS_SUBDOMAIN = expected({"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
                         "a DNS subdomain (lower-case letters, digits, '-' and '.')")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = expected({"type": "string", "pattern": rf"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?{_LABEL_NAME}$"},
                     "a label key ([prefix/]name, the name at most 63 characters)")
LABEL_VALUE = expected({"type": "string", "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", "maxLength": 63},
                       "a label value (letters, digits, '-', '_', '.', starting and ending alphanumeric, at most 63)")
LABELS = {"type": "object", "propertyNames": LABEL_KEY, "additionalProperties": LABEL_VALUE}
ADDRESS = expected({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"}, "a host name or IP address")
ENDPOINT = expected({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]*:[0-9]{1,5}$"}, "host:port")
CIDR = expected({"type": "string", "pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"}, "an IPv4 CIDR")
K8S_VERSION = expected({"type": "string", "pattern": r"^v1\.[0-9]+\.[0-9]+$"}, "a Kubernetes version like v1.33.4")
CHART_VERSION = expected({"type": "string", "pattern": r"^v?[0-9]+\.[0-9]+\.[0-9]+[-A-Za-z0-9.]*$"},
                         "a chart version like v25.10.1")
TOKEN = expected({"type": "string", "pattern": r"^[a-z0-9]{6}\.[a-z0-9]{16}$"},
                 "a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})")
HEX64 = expected({"type": "string", "pattern": r"^[0-9a-f]{64}$"}, "64 hex digits")
CA_HASH = expected({"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"}, "sha256:<64 hex digits>")
QUANTITY = {"anyOf": [{"type": "integer", "minimum": 0},
                      {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|m|k|M|G|T)?$"}]}
TAINT = obj(["key", "effect"], {"key": LABEL_KEY, "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}},
            {"value": LABEL_VALUE})
TOLERATION = obj([], {"key": LABEL_KEY, "operator": {"enum": ["Exists", "Equal"]}, "value": LABEL_VALUE,
                      "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}})
META = obj(["name"], {"name": DNS_SUBDOMAIN}, {"namespace": DNS_LABEL, "labels": LABELS})
# Built-in kinds: the rest of their metadata is Kubernetes' schema's business; names and labels are checked here.
OBJECT_META = {**META, "additionalProperties": True}
NAMESPACE_META = {**OBJECT_META, "properties": {**META["properties"], "name": DNS_LABEL}}
CNIS = ["calico", "cilium", "flannel"]

# -- input ---------------------------------------------------------------------------------------------------------

GPU = obj(["vendor", "model", "count"], {"vendor": {"type": "string", "minLength": 1},
                                        "model": {"type": "string", "minLength": 1},
                                        "count": {"type": "integer", "minimum": 1, "maximum": 64}})
NODE = obj(["name", "address", "cpus", "memory_gb"],
           {"name": DNS_SUBDOMAIN, "address": ADDRESS, "cpus": {"type": "integer", "minimum": 1},
            "memory_gb": {"type": "number", "exclusiveMinimum": 0}},
           {"gpu": {"oneOf": [{"type": "null"}, GPU]}, "project": {"oneOf": [{"type": "null"}, DNS_LABEL]},
            "site": {"type": ["string", "null"]}, "location": {"type": ["string", "null"]},
            "rack": {"type": ["string", "null"]}, "leaf": {"type": ["string", "null"]},
            "nvlink_domain": {"type": ["string", "null"]}})
CHARTS = ("gpu_operator", "amd_gpu_operator", "gaudi_operator", "cert_manager", "calico", "cilium", "flannel",
          "kueue")
VERSIONS = obj(list(CHARTS), {key: CHART_VERSION for key in CHARTS})
CLUSTER = obj(
    ["name", "kubernetes_version", "control_planes", "api_port", "pod_subnet", "service_subnet", "dns_domain",
     "cni", "containerd_config_version", "nvidia_stack", "gpu_taint", "control_plane_schedulable",
     "topology_manager_policy", "label_prefix", "default_namespace", "ca_cert_pem", "bootstrap_token",
     "certificate_key", "versions"],
    {"name": DNS_LABEL, "kubernetes_version": K8S_VERSION,
     "control_planes": array(NAME, minItems=1, maxItems=7), "api_port": {"type": "integer", "minimum": 1,
                                                                          "maximum": 65535},
     "pod_subnet": CIDR, "service_subnet": CIDR, "dns_domain": DNS_SUBDOMAIN, "cni": {"enum": CNIS},
     "containerd_config_version": {"enum": [2, 3]}, "nvidia_stack": {"enum": ["host", "operator"]},
     "gpu_taint": {"type": "boolean"}, "control_plane_schedulable": {"type": "boolean"},
     "topology_manager_policy": {"enum": ["none", "best-effort", "restricted", "single-numa-node"]},
     "label_prefix": DNS_SUBDOMAIN, "default_namespace": DNS_LABEL,
     "ca_cert_pem": {"type": "string", "pattern": "-----BEGIN CERTIFICATE-----"},
     "bootstrap_token": TOKEN, "certificate_key": HEX64, "versions": VERSIONS},
    {"api_endpoint": ENDPOINT, "tenant": {"type": ["string", "null"]}})
TOPOLOGY = obj([], {}, {"spines": {"type": "object", "additionalProperties": array({"type": "string"})},
                        "pods": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}})
INPUT = obj(["cluster", "nodes"], {"cluster": CLUSTER, "nodes": array(NODE, minItems=1)}, {"topology": TOPOLOGY})

# -- kubeadm.k8s.io/v1beta4 and kubelet.config.k8s.io/v1beta1 ---------------------------------------------------------

ARG = obj(["name", "value"], {"name": {"type": "string", "pattern": r"^[a-z][a-z0-9-]*$"}, "value": {"type": "string"}})
NODE_REGISTRATION = obj(["name", "criSocket", "taints"],
                        {"name": DNS_SUBDOMAIN, "criSocket": {"type": "string", "pattern": r"^unix:///"},
                         "taints": array(TAINT)},
                        {"kubeletExtraArgs": array(ARG)})
API_ENDPOINT = obj(["advertiseAddress", "bindPort"], {"advertiseAddress": ADDRESS,
                                                       "bindPort": {"type": "integer", "minimum": 1, "maximum": 65535}})
KUBEADM = "kubeadm.k8s.io/v1beta4"
INIT = obj(["apiVersion", "kind", "bootstrapTokens", "nodeRegistration", "localAPIEndpoint", "certificateKey"],
           {"apiVersion": {"const": KUBEADM}, "kind": {"const": "InitConfiguration"},
            "bootstrapTokens": array(obj(["token", "ttl", "usages", "groups"],
                                         {"token": TOKEN, "ttl": {"type": "string", "pattern": r"^[0-9]+[hms]$"},
                                          "usages": array({"enum": ["signing", "authentication"]}),
                                          "groups": array({"type": "string"})}), minItems=1),
            "nodeRegistration": NODE_REGISTRATION, "localAPIEndpoint": API_ENDPOINT, "certificateKey": HEX64})
CLUSTER_CONFIG = obj(
    ["apiVersion", "kind", "clusterName", "kubernetesVersion", "controlPlaneEndpoint", "networking", "proxy"],
    {"apiVersion": {"const": KUBEADM}, "kind": {"const": "ClusterConfiguration"}, "clusterName": DNS_LABEL,
     "kubernetesVersion": K8S_VERSION, "controlPlaneEndpoint": ENDPOINT,
     "networking": obj(["podSubnet", "serviceSubnet", "dnsDomain"],
                       {"podSubnet": CIDR, "serviceSubnet": CIDR, "dnsDomain": DNS_SUBDOMAIN}),
     "proxy": obj(["disabled"], {"disabled": {"type": "boolean"}})},
    {"apiServer": obj([], {"certSANs": array(ADDRESS)})})
KUBELET = obj(["apiVersion", "kind", "cgroupDriver", "topologyManagerPolicy", "containerRuntimeEndpoint"],
              {"apiVersion": {"const": "kubelet.config.k8s.io/v1beta1"}, "kind": {"const": "KubeletConfiguration"},
               "cgroupDriver": {"const": "systemd"},
               "topologyManagerPolicy": {"enum": ["none", "best-effort", "restricted", "single-numa-node"]},
               "containerRuntimeEndpoint": {"type": "string", "pattern": r"^unix:///"}},
              {"maxPods": {"type": "integer", "minimum": 1}, "serverTLSBootstrap": {"type": "boolean"}})
JOIN = obj(["apiVersion", "kind", "discovery", "nodeRegistration"],
           {"apiVersion": {"const": KUBEADM}, "kind": {"const": "JoinConfiguration"},
            "discovery": obj(["bootstrapToken"], {"bootstrapToken": obj(
                ["apiServerEndpoint", "token", "caCertHashes"],
                {"apiServerEndpoint": ENDPOINT, "token": TOKEN, "caCertHashes": array(CA_HASH, minItems=1)})}),
            "nodeRegistration": NODE_REGISTRATION},
           {"controlPlane": obj(["localAPIEndpoint", "certificateKey"],
                                {"localAPIEndpoint": API_ENDPOINT, "certificateKey": HEX64})})

# -- kueue.x-k8s.io/v1beta2 (subset of the CRDs' openAPIV3Schema, closed) ----------------------------------------

KUEUE = "kueue.x-k8s.io/v1beta2"
TOPOLOGY_DOC = obj(["apiVersion", "kind", "metadata", "spec"],
                   {"apiVersion": {"const": KUEUE}, "kind": {"const": "Topology"}, "metadata": META,
                    "spec": obj(["levels"], {"levels": array(obj(["nodeLabel"], {"nodeLabel": LABEL_KEY}),
                                                             minItems=1, maxItems=16)})})
FLAVOR = obj(["apiVersion", "kind", "metadata", "spec"],
             {"apiVersion": {"const": KUEUE}, "kind": {"const": "ResourceFlavor"}, "metadata": META,
              "spec": obj(["nodeLabels"], {"nodeLabels": LABELS},
                          {"topologyName": DNS_SUBDOMAIN, "tolerations": array(TOLERATION, maxItems=8)})})
RESOURCE = obj(["name", "nominalQuota"], {"name": {"type": "string"}, "nominalQuota": QUANTITY})
CLUSTER_QUEUE = obj(
    ["apiVersion", "kind", "metadata", "spec"],
    {"apiVersion": {"const": KUEUE}, "kind": {"const": "ClusterQueue"}, "metadata": META,
     "spec": obj(["namespaceSelector", "resourceGroups"],
                 {"namespaceSelector": obj([], {"matchLabels": LABELS}),
                  "resourceGroups": array(obj(["coveredResources", "flavors"], {
                      "coveredResources": array({"type": "string"}, minItems=1, maxItems=64),
                      "flavors": array(obj(["name", "resources"], {
                          "name": DNS_SUBDOMAIN, "resources": array(RESOURCE, minItems=1, maxItems=64)}),
                          minItems=1, maxItems=64)}), minItems=1, maxItems=16)},
                 {"queueingStrategy": {"enum": ["StrictFIFO", "BestEffortFIFO"]}})})
LOCAL_QUEUE = obj(["apiVersion", "kind", "metadata", "spec"],
                  {"apiVersion": {"const": KUEUE}, "kind": {"const": "LocalQueue"}, "metadata": META,
                   "spec": obj(["clusterQueue"], {"clusterQueue": DNS_SUBDOMAIN})})

# -- the GPU operators' and CNIs' own objects and values -----------------------------------------------------------

DEVICE_CONFIG = obj(["apiVersion", "kind", "metadata", "spec"],
                    {"apiVersion": {"const": "amd.com/v1alpha1"}, "kind": {"const": "DeviceConfig"}, "metadata": META,
                     "spec": obj(["selector", "driver", "devicePlugin", "metricsExporter"], {
                         "selector": LABELS, "driver": obj(["enable"], {"enable": {"type": "boolean"}}),
                         "devicePlugin": obj(["enableDevicePlugin", "enableNodeLabeller"],
                                             {"enableDevicePlugin": {"type": "boolean"},
                                              "enableNodeLabeller": {"type": "boolean"}}),
                         "metricsExporter": obj(["enable"], {"enable": {"type": "boolean"}})})})
ENABLED = obj(["enabled"], {"enabled": {"type": "boolean"}})
TOOLKIT = obj(["enabled"], {"enabled": {"type": "boolean"}},
              {"env": array(obj(["name", "value"], {"name": {"type": "string"}, "value": {"type": "string"}}))})
NVIDIA_VALUES = obj(
    ["driver", "toolkit", "nfd", "gfd", "dcgmExporter", "mig", "cdi", "operator", "daemonsets"],
    {"driver": ENABLED, "toolkit": TOOLKIT, "nfd": ENABLED, "gfd": ENABLED, "dcgmExporter": ENABLED,
     "mig": obj(["strategy"], {"strategy": {"enum": ["none", "single", "mixed"]}}), "cdi": ENABLED,
     "operator": obj(["runtimeClass"], {"runtimeClass": DNS_SUBDOMAIN}),
     "daemonsets": obj(["tolerations"], {"tolerations": array(TOLERATION)})})
AMD_VALUES = obj(["node-feature-discovery", "kmm", "crds"],
                 {"node-feature-discovery": ENABLED, "kmm": ENABLED,
                  "crds": obj(["defaultCR"], {"defaultCR": obj(["install"], {"install": {"type": "boolean"}})})})
IP_POOL = obj(["name", "cidr", "blockSize", "encapsulation", "natOutgoing", "nodeSelector"],
              {"name": DNS_SUBDOMAIN, "cidr": CIDR, "blockSize": {"type": "integer", "minimum": 20, "maximum": 32},
               "encapsulation": {"enum": ["IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None"]},
               "natOutgoing": {"enum": ["Enabled", "Disabled"]}, "nodeSelector": {"type": "string"}})
CALICO_VALUES = obj(["installation"], {"installation": obj(["cni", "calicoNetwork"], {
    "cni": obj(["type"], {"type": {"const": "Calico"}}),
    "calicoNetwork": obj(["ipPools"], {"ipPools": array(IP_POOL, minItems=1)})})})
CILIUM_VALUES = obj(["kubeProxyReplacement", "k8sServiceHost", "k8sServicePort", "ipam"],
                    {"kubeProxyReplacement": {"type": "boolean"}, "k8sServiceHost": ADDRESS,
                     "k8sServicePort": {"type": "integer"},
                     "ipam": obj(["mode", "operator"], {"mode": {"const": "cluster-pool"}, "operator": obj(
                         ["clusterPoolIPv4PodCIDRList", "clusterPoolIPv4MaskSize"],
                         {"clusterPoolIPv4PodCIDRList": array(CIDR, minItems=1),
                          "clusterPoolIPv4MaskSize": {"type": "integer", "minimum": 16, "maximum": 30}})})})
FLANNEL_VALUES = obj(["podCidr"], {"podCidr": CIDR})
CERT_MANAGER_VALUES = obj(["crds"], {"crds": ENABLED})

# Documents checked by their (apiVersion, kind); built-in kinds go to kubernetes-validate instead.
DOCUMENTS = {
    (KUBEADM, "InitConfiguration"): INIT, (KUBEADM, "ClusterConfiguration"): CLUSTER_CONFIG,
    (KUBEADM, "JoinConfiguration"): JOIN, ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): KUBELET,
    (KUEUE, "Topology"): TOPOLOGY_DOC, (KUEUE, "ResourceFlavor"): FLAVOR, (KUEUE, "ClusterQueue"): CLUSTER_QUEUE,
    (KUEUE, "LocalQueue"): LOCAL_QUEUE, ("amd.com/v1alpha1", "DeviceConfig"): DEVICE_CONFIG,
}
# Helm values files by chart (the Gaudi operator runs with its chart's defaults: gpucloud sets none of its values).
VALUES = {"nvidia/gpu-operator": NVIDIA_VALUES, "rocm/gpu-operator-charts": AMD_VALUES,
          "projectcalico/tigera-operator": CALICO_VALUES,
          "cilium/cilium": CILIUM_VALUES, "flannel/flannel": FLANNEL_VALUES,
          "jetstack/cert-manager": CERT_MANAGER_VALUES}

# containerd's config.toml, the runtimes gpucloud writes (after parsing the TOML).
RUNTIME = obj(["runtime_type", "options"], {"runtime_type": {"const": "io.containerd.runc.v2"},
                                             "options": obj(["SystemdCgroup"], {"SystemdCgroup": {"const": True}},
                                                            {"BinaryName": {"type": "string", "pattern": "^/"}})})
CONTAINERD_RUNTIMES = obj(["default_runtime_name", "runtimes"],
                          {"default_runtime_name": {"type": "string"},
                           "runtimes": {"type": "object", "required": ["runc"], "additionalProperties": RUNTIME}})
