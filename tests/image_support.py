"""Golden image fixtures: one real build per test session (incremental on a cached base), and a
qemu boot of its artifacts with SSH forwarded from the host.

The image is built with a test SSH key kept in .state/image-test (stable per checkout, so a
second session finds the image current and builds nothing) and a small hugepage reservation that
fits the boot VM's memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STATE = REPO / ".state" / "image-test"
# Builds are big; keep them out of the checkout, one work directory per checkout.
WORK = Path("/var/tmp/gpucloud/images-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:8])
IMAGE = "gpucloud-test"
NODE_TYPE = "test-vm"
HUGEPAGES = 64  # x 2 MiB = 128 MiB of the boot VM's 1 GiB
BOOT_TIMEOUT = 600  # software emulation boots in 46-128 s here; leave room on a loaded CI machine


def ssh_key() -> Path:
    key = STATE / "id_ed25519"
    if not key.exists():
        STATE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gpucloud-image-test", "-f", str(key)],
                       check=True)
    return key


def build_vars(output_dir: Path, **extra) -> dict:
    return {
        "golden_image_name": IMAGE,
        "golden_image_output_dir": str(output_dir),
        "golden_image_work_dir": str(WORK),
        "golden_image_node_type": NODE_TYPE,
        "golden_image_cpu_vendor": "intel",
        "golden_image_root_authorized_keys": [ssh_key().with_suffix(".pub").read_text().strip()],
        "golden_image_keep": 2,
        "os_tuning_hugepages_by_node_type": {"default": {"size": "2M", "count": 0},
                                             NODE_TYPE: {"size": "2M", "count": HUGEPAGES}},
        **extra,
    }


def build(output_dir: Path, *args: str, **extra) -> subprocess.CompletedProcess:
    """Run playbooks/build_image.yml; extra vars go as one JSON document (lists and dicts intact)."""
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "ansible-playbook"), "playbooks/build_image.yml", "-e",
                           json.dumps(build_vars(output_dir, **extra)), *args],
                          cwd=REPO, env=env, capture_output=True, text=True)


def recap(output: str) -> dict:
    """Sum of the PLAY RECAP counters over all hosts."""
    totals: dict[str, int] = {}
    for name, value in re.findall(r"\b(ok|changed|unreachable|failed|skipped|rescued|ignored)=(\d+)", output):
        totals[name] = totals.get(name, 0) + int(value)
    return totals


@pytest.fixture(scope="session")
def base_tarball() -> Path:
    """The golden image's cached base (golden_image's defaults through image_base; built on first use, minutes)."""
    import yaml

    from ansible_collections.gpucloud.infra.plugins.module_utils import image_base

    defaults = yaml.safe_load((REPO / "roles/golden_image/defaults/main.yml").read_text())
    spec = image_base.spec_of({"distribution": defaults["golden_image_distribution"],
                               "suite": defaults["golden_image_suite"], "variant": defaults["golden_image_variant"],
                               "architecture": "amd64", "mirror": defaults["golden_image_mirror"],
                               "packages": defaults["golden_image_base_packages"]})
    cache = image_base.default_cache_dir()
    image_base.build(cache, spec)
    return image_base.paths(cache, image_base.key_of(spec))["tarball"]


@pytest.fixture(scope="session")
def image_output():
    out = STATE / "images"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def built_image(image_output):
    """The current test image's manifest (built now unless it is already current)."""
    proc = build(image_output)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return json.loads((image_output / f"{IMAGE}.manifest.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_argv(port: int) -> list[str]:
    return ["ssh", "-q", "-i", str(ssh_key()), "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1"]


def ssh(port: int, command: str, check: bool = True) -> str:
    proc = subprocess.run([*ssh_argv(port), command], capture_output=True, text=True, timeout=120)
    if check and proc.returncode:
        raise AssertionError(f"ssh {command!r} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def accelerator() -> str:
    """TCG unless GPUCLOUD_QEMU_ACCEL says otherwise: /dev/kvm exists on this kind of machine but a
    guest kernel hangs in early boot under it (nested virtualisation), so KVM is opt-in."""
    return os.environ.get("GPUCLOUD_QEMU_ACCEL", "tcg")


def console_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def booted(manifest: dict, output_dir: Path, log: Path):
    """Boot the image's kernel, initrd and qcow2 (copy-on-write, the artifact stays untouched) with the
    manifest's boot arguments; yield the forwarded SSH port once sshd answers."""
    art = manifest["artifacts"]
    port = free_port()
    # q35 with an emulated Intel IOMMU: the image asks for intel_iommu=on iommu=pt, and node_drift checks that
    # the IOMMU is really on, as on a GPU server.
    argv = ["qemu-system-x86_64", "-accel", accelerator(), "-machine", "q35", "-device", "intel-iommu,intremap=off",
            "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
            "-kernel", str(output_dir / art["kernel"]["file"]), "-initrd", str(output_dir / art["initrd"]["file"]),
            "-append", f"{manifest['boot']['append']} console=ttyS0 panic=-1",
            "-drive", f"file={output_dir / art['qcow2']['file']},if=virtio,format=qcow2,snapshot=on",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=n0"]
    assert shutil.which(argv[0]), "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)"
    with log.open("wb") as console:
        vm = subprocess.Popen(argv, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + BOOT_TIMEOUT
            while time.monotonic() < deadline:
                assert vm.poll() is None, f"qemu exited ({vm.returncode}); console:\n{console_tail(log)}"
                if subprocess.run([*ssh_argv(port), "true"], capture_output=True, timeout=60).returncode == 0:
                    break
                time.sleep(3)
            else:
                raise AssertionError(f"no SSH after {BOOT_TIMEOUT} s; console:\n{console_tail(log)}")
            yield port
        finally:
            vm.kill()
            vm.wait()
