"""Every role's Molecule scenario: syntax, converge, idempotence, check mode, verify.

Roles whose pytest suite already runs check, apply and re-apply against the same lab keep their
scenario for `make molecule` (GPUCLOUD_MOLECULE=all), so CI does not pay for the same triplet twice.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROLES = Path(__file__).resolve().parent.parent / "roles"
SCENARIOS = sorted(p.parent.parent.parent.name for p in ROLES.glob("*/molecule/default/molecule.yml"))
TRIPLET_IN_PYTEST = {
    "bios_tuning": "tests/test_bios_role.py::test_check_then_apply_then_reapply (lab BMCs, check mode after)",
    "fabric_tenant": "tests/test_fabric_tenant.py (check, apply, apply again, check mode on the fabric lab)",
    "ib_partition": "tests/test_ib_partition.py::test_role_check_apply_reapply_and_removal",
    "netbox_datamodel": "tests/test_datamodel.py::test_check_apply_reapply",
    "gpu_stack": "tests/test_gpu_stack.py (install, second run, check mode on real roots)",
    "image_deploy": "tests/test_deploy_image.py::test_deploy_then_rerun_then_check",
    "node_wipe": "tests/test_node_wipe.py (check, apply, re-apply on fleet BMCs)",
    "tenant_network": "tests/test_tenant_network_playbook.py::test_check_then_apply_then_nothing_changes",
    "slurm_cluster": "tests/test_slurm_cluster.py::test_check_then_apply_then_nothing_changes (real Slurm)",
    "k8s_cluster": "tests/test_k8s_cluster.py::test_check_then_render_then_nothing_changes",
}


@pytest.mark.parametrize("role", SCENARIOS)
def test_molecule(role, lab_env, fleet):
    if role in TRIPLET_IN_PYTEST and os.environ.get("GPUCLOUD_MOLECULE") != "all":
        pytest.skip(f"covered by {TRIPLET_IN_PYTEST[role]}; `make molecule` runs this scenario")
    env = {**os.environ, **lab_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "molecule"), "test"], cwd=ROLES / role, env=env,
                          capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    # The failing task first (Molecule's own summary comes after it and would push it out of the message).
    failed = [text[max(0, m.start() - 1500):m.start() + 1500] for m in re.finditer(r"fatal: |\[ERROR\]", text)]
    assert proc.returncode == 0, "\n...\n".join(failed[:2]) + "\n...\n" + text[-3000:]
    assert re.search(r"idempotence: Executed: Successful", text), text[-3000:]
