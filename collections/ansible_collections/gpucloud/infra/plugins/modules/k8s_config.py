#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

# Documentation only: the work runs on the controller in plugins/action/k8s_config.py, which writes the files
# there (they hold the cluster's bootstrap token and certificate key, which must not travel in a task result).

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_config
short_description: Compute, render and validate a GPU Kubernetes cluster's files from its nodes' NetBox facts
description:
  - From O(cluster) (settings) and O(nodes) (each node's NetBox facts) computes every file a kubeadm cluster of GPU
    nodes needs - kubeadm's InitConfiguration, ClusterConfiguration and KubeletConfiguration, a JoinConfiguration
    per other node (control planes with the certificate key; every join carries the CA's hash), containerd's
    config per node (runc plus the GPU vendor's runtime), the Helm values of the CNI (Calico, Cilium, Flannel) and
    of each vendor's GPU operator (NVIDIA, AMD, Intel Gaudi), node labels from NetBox topology (region, zone, spine
    plane, leaf, rack, NVLink domain, GPU, project), per-project namespaces, and Kueue's Topology,
    ResourceFlavors, ClusterQueue and LocalQueues for topology-aware scheduling.
  - Validates everything offline before writing - built-in kinds against Kubernetes' own strict schemas
    (kubernetes-validate), kubeadm/kubelet/Kueue/AMD kinds and Helm values against closed schemas, containerd's
    TOML parsed, and the rules no schema states (Kueue's, CNI CIDRs inside the pod subnet, joins with the init's
    token) - reporting every problem at once.
  - Writes the files into O(dest) on the controller (directories 0700, files 0600), only those that changed, and
    removes the files of nodes that left. The result names files and digests; diffs of the files holding secrets
    show no content.
  - Check mode writes nothing; before the cluster CA exists it renders with a stand-in CA and says so.
version_added: "0.6.0"
author: gpucloud contributors
options:
  cluster:
    description: The cluster's settings (C(module_utils/k8s_schema.py), C(CLUSTER)) without the secrets - name,
      kubernetes_version, control_planes, api_port, pod/service subnets, dns_domain, cni, containerd config version,
      nvidia_stack, gpu_taint, control_plane_schedulable, topology_manager_policy, label_prefix, default_namespace,
      ca_cert_pem, chart versions, optional api_endpoint and tenant.
    type: dict
    required: true
  nodes:
    description: One entry per node (C(module_utils/k8s_schema.py), C(NODE)), as the gpucloud.infra.cluster_nodes
      filter returns them.
    type: list
    elements: dict
    required: true
  topology:
    description: Spines per leaf and pod per location, as M(gpucloud.infra.cluster_topology_info) returns them.
    type: dict
    default: {}
  bootstrap_token:
    description: The join token, C([a-z0-9]{6}.[a-z0-9]{16}). Never logged.
    type: str
    required: true
  certificate_key:
    description: The key encrypting the certificates joining control planes fetch (64 hex digits). Never logged.
    type: str
    required: true
  dest:
    description: Directory on the controller to write the files into; without it nothing is written and the files
      without secrets come back in RV(rendered).
    type: path
attributes:
  action:
    support: full
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Files holding secrets show no content in the diff; secrets are masked everywhere else.
"""

EXAMPLES = r"""
- name: Render and validate the cluster's files
  gpucloud.infra.k8s_config:
    cluster: "{{ k8s_settings }}"
    nodes: "{{ ansible_play_hosts_all | gpucloud.infra.cluster_nodes(hostvars) }}"
    topology: "{{ topology.topology }}"
    bootstrap_token: "{{ lookup('ansible.builtin.file', pki ~ '/bootstrap-token') }}"
    certificate_key: "{{ lookup('ansible.builtin.file', pki ~ '/certificate-key') }}"
    dest: /srv/gpucloud/k8s/acme-infer
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description: Every rendered file by path under O(dest), with its sha256, whether it holds secrets, and whether it
    changed.
  returned: success
  type: dict
  sample: {cluster/kubeadm-init.yaml: {sha256: 3f2a..., secret: true, changed: false}}
releases:
  description: The Helm releases to install in order (name, repo, repo_url, chart, version, namespace, values_file).
  returned: success
  type: list
  elements: dict
labels:
  description: The labels of each node.
  returned: success
  type: dict
rendered:
  description: Without O(dest), the text of each file that holds no secret.
  returned: when dest is not given
  type: dict
errors:
  description: Every problem found (on failure), secrets masked.
  returned: failure
  type: list
  elements: str
"""
