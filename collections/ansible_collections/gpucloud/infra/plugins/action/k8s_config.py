# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin for gpucloud.infra.k8s_config: computes, renders and validates on the controller, and writes the
files there (dest), so the bootstrap token and certificate key inside kubeadm's files never travel in a result:
what comes back names files and digests, diffs of the files holding secrets show no content, and any other text
(errors included) has the secrets masked."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gpucloud.infra.plugins.module_utils import k8s_config, k8s_render

ARGUMENT_SPEC = {
    "cluster": {"type": "dict", "required": True},
    "nodes": {"type": "list", "elements": "dict", "required": True},
    "topology": {"type": "dict", "default": {}},
    "bootstrap_token": {"type": "str", "required": True, "no_log": True},
    "certificate_key": {"type": "str", "required": True, "no_log": True},
    "dest": {"type": "path"},
}
INDEX = ".gpucloud-files"  # what the last render wrote, so files of nodes that left are removed
MASK = "********"


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_diff = True

    def run(self, tmp=None, task_vars=None):
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result = super().run(tmp, task_vars)
        args = json.loads(json.dumps(args))  # plain data (no Ansible-tagged strings), as YAML dumps it
        secrets = [args["bootstrap_token"], args["certificate_key"]]
        try:
            return self._run(result, args, secrets)
        except AnsibleActionFail:
            raise
        except Exception as exc:  # whatever broke, its text must not carry the secrets
            raise AnsibleActionFail(f"rendering the Kubernetes config failed: {_mask(repr(exc), secrets)}") from None

    def _run(self, result: dict, args: dict, secrets: list[str]) -> dict:
        cluster = {**args["cluster"], "bootstrap_token": secrets[0], "certificate_key": secrets[1]}
        warnings = []
        if not cluster.get("ca_cert_pem") and self._task.check_mode:
            cluster["ca_cert_pem"] = k8s_config.self_signed_ca("kubernetes (check mode stand-in)")
            warnings.append("check mode: the cluster CA does not exist yet; join files show a stand-in CA hash")
        try:
            config = k8s_config.build({"cluster": cluster, "nodes": args["nodes"], "topology": args["topology"]})
        except k8s_config.K8sConfigError as exc:
            errors = [_mask(e, secrets) for e in exc.errors]
            raise AnsibleActionFail(f"{len(errors)} problem(s) in the Kubernetes config: " + "; ".join(errors),
                                    result={"errors": errors}) from None
        files = k8s_render.render(config, cluster["name"])
        errors = [_mask(e, secrets) for e in k8s_render.check(files, cluster["kubernetes_version"])]
        if errors:
            raise AnsibleActionFail(f"{len(errors)} problem(s) in the rendered Kubernetes files: " + "; ".join(errors),
                                    result={"errors": errors})
        secret = set(config["secret_files"])
        written, diffs = self._write(files, secret, secrets, args["dest"]) if args["dest"] else ({}, [])
        result.update(
            changed=any(written.values()), dest=args["dest"],
            files={p: {"sha256": _sha(t), "secret": p in secret, "changed": written.get(p, False)}
                   for p, t in files.items()},
            releases=[{k: v for k, v in r.items() if k != "values"} | {"values_file": f"cluster/helm/{r['name']}"
                                                                                     "-values.yaml"}
                      for r in config["releases"]],
            labels=config["labels"], warnings=warnings)
        if not args["dest"]:  # nothing written: hand back what can be shown
            result["rendered"] = {p: t for p, t in files.items() if p not in secret}
        if diffs and self._task.diff:
            result["diff"] = diffs
        return result

    def _write(self, files: dict[str, str], secret: set, secrets: list[str], dest: str):
        root = Path(dest)
        old_index = root / INDEX
        previous = set(old_index.read_text().split()) if old_index.is_file() else set()
        written, diffs = {}, []
        for path, text in files.items():
            target = root / path
            before = target.read_text() if target.is_file() else None
            written[path] = before != text
            if not written[path]:
                continue
            if path in secret:  # a rotated token would show in "before": no content at all
                shown = ("(holds secrets: not shown)\n" if before is not None else "",
                         "(holds secrets: changed, not shown)\n")
            else:
                shown = (_mask(before or "", secrets), _mask(text, secrets))
            diffs.append({"before_header": str(target), "after_header": str(target),
                          "before": shown[0], "after": shown[1]})
            if not self._task.check_mode:
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = target.with_name(f".{target.name}.{os.getpid()}")
                tmp.write_text(text)
                tmp.chmod(0o600)
                tmp.replace(target)
        for stale in sorted(previous - set(files)):
            written[stale] = True
            diffs.append({"before_header": str(root / stale), "after_header": "(removed)", "before": "(file)",
                          "after": ""})
            if not self._task.check_mode:
                (root / stale).unlink(missing_ok=True)
        if not self._task.check_mode and (any(written.values()) or not old_index.is_file()):
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            old_index.write_text("\n".join(sorted(files)) + "\n")
            old_index.chmod(0o600)
        return written, diffs
