"""Every role's Molecule scenario: syntax, converge, idempotence, check mode, verify."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROLES = Path(__file__).resolve().parent.parent / "roles"
SCENARIOS = sorted(p.parent.parent.parent.name for p in ROLES.glob("*/molecule/default/molecule.yml"))


@pytest.mark.parametrize("role", SCENARIOS)
def test_molecule(role, lab_env, fleet):
    env = {**os.environ, **lab_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "molecule"), "test"], cwd=ROLES / role, env=env,
                          capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    # The failing task first (Molecule's own summary comes after it and would push it out of the message).
    failed = [text[max(0, m.start() - 1500):m.start() + 1500] for m in re.finditer(r"fatal: |\[ERROR\]", text)]
    assert proc.returncode == 0, "\n...\n".join(failed[:2]) + "\n...\n" + text[-3000:]
    assert re.search(r"idempotence: Executed: Successful", text), text[-3000:]
