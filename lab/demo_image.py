"""Demo step 8: a golden image for the MI300X servers, built for real (mmdebstrap base, os_tuning and
the AMD GPU stack Debian ships, through the chroot connection), recorded in NetBox and assigned to
those servers; then node_drift, which finds that the lab's nodes (this machine stands in for all
of them) do not run it.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lab.settings import Settings

IMAGE = "gpu-debian12-mi300x"
NODE_TYPE = "mi300x-8gpu"


def _ansible_playbook(s: Settings, env: dict, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(exe), *args], cwd=s.repo, env={**os.environ, **env, "ANSIBLE_FORCE_COLOR": "0"},
                          capture_output=True, text=True)


def _build(s: Settings, env: dict, output: Path) -> dict:
    work = Path("/var/tmp/gpucloud/images-" + hashlib.sha256(str(s.repo).encode()).hexdigest()[:8])
    extra = {"golden_image_name": IMAGE, "golden_image_output_dir": str(output), "golden_image_work_dir": str(work),
             "golden_image_node_type": NODE_TYPE, "golden_image_cpu_vendor": "amd", "golden_image_gpu_vendor": "AMD",
             "golden_image_gpu_stack_profile": "debian-bookworm-amd", "golden_image_netbox_register": True,
             "golden_image_netbox_device_filter": {"role": "gpu-server", "device_type": NODE_TYPE}}
    proc = _ansible_playbook(s, env, "playbooks/build_image.yml", "-e", json.dumps(extra))
    if proc.returncode:
        raise SystemExit(f"build_image.yml failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return json.loads((output / f"{IMAGE}.manifest.json").read_text())


def _summary(manifest: dict) -> list[str]:
    art = manifest["artifacts"]
    stack = next(iter(manifest["gpu_stack"].values()), {})
    return [
        f"{manifest['name']} {manifest['version']}: {manifest['base']['builder']} {manifest['base']['suite']}, "
        f"kernel {manifest['kernel']['release']}, {len(manifest['packages'])} packages, "
        f"git {manifest['git_revision'][:12]}",
        f"cmdline: {manifest['cmdline']}",
        "GPU stack " + stack.get("release", "-") + ": " + ", ".join(
            f"{c['package']}={c['version']}" for c in stack.get("components", {}).values()),
        "artifacts: " + ", ".join(f"{k} {a['bytes'] / 2**20:.0f} MiB sha256:{a['sha256'][:12]}"
                                  for k, a in art.items() if k in ("raw", "qcow2", "squashfs")),
    ]


def golden_image(s: Settings, env: dict, fleet) -> None:
    print(f"== 8. golden image for the {NODE_TYPE} servers (playbooks/build_image.yml; the first build takes minutes)")
    t0 = time.monotonic()
    manifest = _build(s, env, s.repo / ".state" / "images")
    print(f"  built or found current in {time.monotonic() - t0:.0f}s")
    for line in _summary(manifest):
        print("  " + line)
    servers = sorted(srv.name for srv in fleet.servers if srv.device_type == NODE_TYPE)
    slug = f"{IMAGE}-{manifest['version']}".replace(".", "-")
    print(f"  NetBox: platform {slug} (under {IMAGE}) assigned to {len(servers)} servers: {', '.join(servers)}")
    report = s.repo / ".state" / "reports" / "demo-drift.json"
    # The lab's nodes have no SSH: this machine stands in for each of them (as for the runner's jobs).
    proc = _ansible_playbook(s, env, "-i", "inventory/fleet.gpucloud_netbox.yml", "playbooks/node_drift.yml",
                             "--limit", servers[0], "-e", f"node_drift_report={report}",
                             "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}")
    node = json.loads(report.read_text())["nodes"].get(servers[0], {}) if report.exists() else {}
    fields = sorted({f["field"] for f in node.get("findings", []) if f.get("severity") != "not_applicable"})
    verdict = "failed the node" if proc.returncode else "passed"
    print(f"  node_drift on {servers[0]} (this machine stands in for it, so it does not run the image): "
          f"{verdict}; {len(fields)} findings: {', '.join(fields[:6])}{' ...' if len(fields) > 6 else ''}")
    print(f"  report {report}; a warning journal entry on {servers[0]} in NetBox")
