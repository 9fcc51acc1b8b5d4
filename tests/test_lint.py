"""Static checks as tests: ruff, ansible-lint (production profile) and ansible-doc on every plugin."""

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


@pytest.mark.parametrize(("kind", "name"), [
    *(("module", f"gpucloud.infra.{name}") for name in MODULES),
    ("lookup", "gpucloud.infra.credential"),
    ("filter", "gpucloud.infra.cluster_nodes"),
    ("connection", "gpucloud.infra.nsenter"),
    ("inventory", "gpucloud_netbox"),
])
def test_ansible_doc_renders(kind, name):
    proc = check(str(BIN / "ansible-doc"), "-t", kind, name)
    assert "OPTIONS" in proc.stdout or "options" in proc.stdout.lower()
