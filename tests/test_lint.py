"""Static checks as tests: ruff, ansible-lint (production profile) and ansible-doc on every plugin."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def check(*cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def test_ruff():
    check(str(BIN / "ruff"), "check", ".")


def test_ansible_lint_production_profile():
    check(str(BIN / "ansible-lint"), "--offline", "--profile", "production", "playbooks", "roles")


MODULES = sorted(p.stem for p in (REPO / "collections/ansible_collections/gpucloud/infra/plugins/modules").glob("*.py")
                 if not p.name.startswith("_"))


PLUGINS = {
    "module": [f"gpucloud.infra.{name}" for name in MODULES],
    "lookup": ["gpucloud.infra.credential"],
    "filter": ["gpucloud.infra.cluster_nodes"],
    "connection": ["gpucloud.infra.nsenter"],
    "inventory": ["gpucloud_netbox"],
}


@pytest.fixture(scope="module")
def rendered():
    """Each kind's plugins through one ansible-doc run (one Ansible start-up per kind, not one per plugin)."""
    cache = {}

    def docs(kind):
        if kind not in cache:
            cache[kind] = json.loads(check(str(BIN / "ansible-doc"), "-t", kind, "--json", *PLUGINS[kind]).stdout)
        return cache[kind]
    return docs


@pytest.mark.parametrize(("kind", "name"), [(kind, name) for kind, names in PLUGINS.items() for name in names])
def test_ansible_doc_renders(rendered, kind, name):
    doc = rendered(kind).get(name, {}).get("doc")
    assert doc, f"ansible-doc rendered no documentation for {kind} {name}"
    assert doc.get("options") and doc.get("short_description"), doc
