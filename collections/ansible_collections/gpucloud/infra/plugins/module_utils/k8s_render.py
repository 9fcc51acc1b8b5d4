# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Render the structured Kubernetes config (k8s_config) into files, and validate them offline, every problem at once.

Files: cluster/kubeadm-init.yaml, nodes/<node>/kubeadm-join.yaml and containerd.toml, cluster/manifests/*.yaml,
cluster/helm/<release>-values.yaml and cluster/helm/releases.yaml (what to install, in order).

Validation reads the files back as a cluster would: built-in kinds against Kubernetes' own strict schemas
(kubernetes-validate, for the cluster's minor version), kubeadm/kubelet/Kueue/AMD kinds and the Helm values against
k8s_schema's closed subsets, containerd.toml parsed as TOML; then what no schema says: Kueue's own rules (the host
level last, a flavor's resources matching the covered ones, queues and flavors that exist), the CNI's pod CIDR
inside kubeadm's podSubnet, and every join file carrying the init's token.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import tomllib
from pathlib import Path

import jinja2
import jsonschema
import yaml

from ansible_collections.gpucloud.infra.plugins.module_utils import k8s_schema as schema

TEMPLATE_DIR = Path(__file__).resolve().parent / "k8s_templates"
RELEASES = "cluster/helm/releases.yaml"
HEADER = "# Managed by gpucloud (gpucloud.infra.k8s_config) from NetBox; cluster {cluster}.\n"


# libyaml when PyYAML has it: thousands of nodes' files are dumped and read back.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(_SafeDumper):
    """Block style, keys in the order built, no anchors (every document stands alone)."""

    def ignore_aliases(self, data):
        return True


def _yaml(documents: list, cluster: str) -> str:
    return HEADER.format(cluster=cluster) + yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False,
                                                          explicit_start=True, default_flow_style=False)


def render(config: dict, cluster: str) -> dict[str, str]:
    """{relative path: text}."""
    files = {path: _yaml(docs, cluster) for path, docs in sorted(config["documents"].items())}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    template = env.get_template("containerd.toml.j2")
    for node, spec in sorted(config["containerd"].items()):
        files[f"nodes/{node}/containerd.toml"] = template.render(node=node, cluster=cluster, spec=spec)
    index = []
    for release in config["releases"]:
        values_file = f"cluster/helm/{release['name']}-values.yaml"
        files[values_file] = _yaml([release["values"]], cluster)
        index.append({k: v for k, v in release.items() if k != "values"} | {"values_file": values_file})
    files[RELEASES] = _yaml([{"releases": index}], cluster)
    return files


# -- validation ----------------------------------------------------------------------------------------------------

def _documents(files: dict[str, str], errors: list[str]) -> dict[str, list]:
    out = {}
    for path, text in files.items():
        if path.endswith(".yaml"):
            try:
                out[path] = [d for d in yaml.load_all(text, Loader=_SafeLoader) if d is not None]
            except yaml.YAMLError as exc:
                errors.append(f"{path}: not YAML ({exc})")
    return out


@functools.lru_cache(maxsize=128)
def _builtin_validator(api_version: str, kind: str, version: str):
    """kubernetes-validate's strict schema of a built-in kind for a minor version, compiled once.

    Its validate() re-reads the kind's schema and the 1.4 MB definitions file on every call and stops at the first
    error; this builds the same validator (the same bundled files, the same registry) once per kind, so thousands
    of nodes' documents cost milliseconds each and every error is reported. None when no schema exists."""
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    bundled = [v for v in utils.all_versions() if utils.major_minor(v) <= version][-1]
    folder = f"kubernetes-json-schema/v{bundled}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        return None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _builtin(doc: dict, version: str) -> list[str]:
    validator = _builtin_validator(str(doc.get("apiVersion")), str(doc.get("kind")), version)
    if validator is None:
        return [f"no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes {version}"]
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def _metadata(doc: dict) -> list[str]:
    """Names and labels as the API server checks them (Kubernetes' published schemas only say "string")."""
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return []
    shape = schema.NAMESPACE_META if doc.get("kind") == "Namespace" else schema.OBJECT_META
    return schema.errors(meta, shape, root="metadata")


def _schema_version(kubernetes_version: str) -> str:
    """kubernetes-validate's schemas for the cluster's minor version (it bundles 1.25 to 1.37)."""
    import kubernetes_validate

    minor = int(kubernetes_version.lstrip("v").split(".")[1])
    newest = int(kubernetes_validate.latest_version().split(".")[1])
    return f"1.{max(25, min(minor, newest))}"


def _each_document(docs: dict[str, list], version: str, errors: list[str]) -> None:
    for path, items in docs.items():
        if path.startswith("cluster/helm/"):
            continue
        for i, doc in enumerate(items):
            where = f"{path}[{i}] {doc.get('kind')}/{(doc.get('metadata') or {}).get('name', '')}".rstrip("/")
            shape = schema.DOCUMENTS.get((doc.get("apiVersion"), doc.get("kind")))
            found = schema.errors(doc, shape) if shape else _builtin(doc, version) + _metadata(doc)
            errors += [f"{where}: {e}" for e in found]


def _helm(docs: dict[str, list], errors: list[str]) -> list[dict]:
    releases = (docs.get(RELEASES) or [{}])[0].get("releases") or []
    for release in releases:
        shape = schema.VALUES.get(release.get("chart"))
        values = (docs.get(release.get("values_file")) or [None])[0]
        if values is None:
            errors.append(f"{RELEASES}: release {release.get('name')}: no values file {release.get('values_file')}")
        elif shape:
            errors += [f"{release['values_file']}: {e}" for e in schema.errors(values, shape)]
    return releases


def _containerd(files: dict[str, str], errors: list[str]) -> None:
    for path, text in files.items():
        if not path.endswith("containerd.toml"):
            continue
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"{path}: not TOML ({exc})")
            continue
        plugin = "io.containerd.grpc.v1.cri" if data.get("version") == 2 else "io.containerd.cri.v1.runtime"
        table = ((data.get("plugins") or {}).get(plugin) or {}).get("containerd")
        if table is None:
            errors.append(f"{path}: no [plugins.{plugin}.containerd] table for config version {data.get('version')}")
            continue
        errors += [f"{path}: {e}" for e in schema.errors(table, schema.CONTAINERD_RUNTIMES)]
        if table.get("default_runtime_name") not in (table.get("runtimes") or {}):
            errors.append(f"{path}: default_runtime_name {table.get('default_runtime_name')!r} is no runtime")


def _kinds(docs: dict[str, list], kind: str) -> list[dict]:
    return [d for items in docs.values() for d in items if isinstance(d, dict) and d.get("kind") == kind]


def _kueue(docs: dict[str, list], errors: list[str]) -> None:
    topologies = {d["metadata"]["name"]: d for d in _kinds(docs, "Topology")}
    flavors = {d["metadata"]["name"]: d for d in _kinds(docs, "ResourceFlavor")}
    queues = {d["metadata"]["name"] for d in _kinds(docs, "ClusterQueue")}
    for name, doc in topologies.items():
        levels = [level.get("nodeLabel") for level in doc["spec"]["levels"]]
        if "kubernetes.io/hostname" in levels[:-1]:
            errors.append(f"Topology {name}: kubernetes.io/hostname must be the last level")
        if len(set(levels)) != len(levels):
            errors.append(f"Topology {name}: levels repeat")
    for name, doc in flavors.items():
        wanted = doc["spec"].get("topologyName")
        if wanted and wanted not in topologies:
            errors.append(f"ResourceFlavor {name}: topologyName {wanted} is no Topology")
    for queue in _kinds(docs, "ClusterQueue"):
        for group in queue["spec"]["resourceGroups"]:
            covered = group["coveredResources"]
            for flavor in group["flavors"]:
                if flavor["name"] not in flavors:
                    errors.append(f"ClusterQueue {queue['metadata']['name']}: flavor {flavor['name']} is no "
                                  "ResourceFlavor")
                if [r["name"] for r in flavor["resources"]] != covered:
                    errors.append(f"ClusterQueue {queue['metadata']['name']}: flavor {flavor['name']} must list "
                                  f"exactly {covered}")
    for local in _kinds(docs, "LocalQueue"):
        if local["spec"]["clusterQueue"] not in queues:
            errors.append(f"LocalQueue {local['metadata']['name']}: no ClusterQueue {local['spec']['clusterQueue']}")


def _consistency(docs: dict[str, list], releases: list[dict], errors: list[str]) -> None:
    config = next(iter(_kinds(docs, "ClusterConfiguration")), None)
    init = next(iter(_kinds(docs, "InitConfiguration")), None)
    if not config or not init:
        errors.append("cluster/kubeadm-init.yaml: needs an InitConfiguration and a ClusterConfiguration")
        return
    pods = ipaddress.ip_network(config["networking"]["podSubnet"], strict=False)
    for release in releases:
        values = (docs.get(release.get("values_file")) or [{}])[0] or {}
        pools = [p["cidr"] for p in ((values.get("installation") or {}).get("calicoNetwork") or {}).get("ipPools", [])]
        pools += ((values.get("ipam") or {}).get("operator") or {}).get("clusterPoolIPv4PodCIDRList", [])
        pools += [values["podCidr"]] if values.get("podCidr") else []
        errors += [f"{release['values_file']}: pod CIDR {cidr} is not inside kubeadm's podSubnet {pods}"
                   for cidr in pools if not ipaddress.ip_network(cidr, strict=False).subnet_of(pods)]
    token = init["bootstrapTokens"][0]["token"]
    for join in _kinds(docs, "JoinConfiguration"):
        if join["discovery"]["bootstrapToken"]["token"] != token:
            errors.append(f"JoinConfiguration of {join['nodeRegistration']['name']}: token differs from the init's")


def check(files: dict[str, str], kubernetes_version: str) -> list[str]:
    """Every problem of the rendered files."""
    errors: list[str] = []
    docs = _documents(files, errors)
    _each_document(docs, _schema_version(kubernetes_version), errors)
    releases = _helm(docs, errors)
    _containerd(files, errors)
    if not errors:  # the cross checks read fields the schemas guarantee
        _kueue(docs, errors)
        _consistency(docs, releases, errors)
    return errors
