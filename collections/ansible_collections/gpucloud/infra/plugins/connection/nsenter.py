# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Connection plugin: run everything inside the namespaces of a process on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: nsenter
short_description: Run tasks inside the Linux namespaces of a process on the controller
description:
  - Runs every command as C(nsenter --target <pid> --mount --uts --net --ipc -- /bin/sh -c <command>), so a task
    sees the mount, UTS (hostname), network and IPC namespaces of that process.
  - File transfers go through C(nsenter) as well (C(dd) to write, C(cat) to read), so they land in the target's own
    mount namespace, for example a switch's private C(/etc/network) or C(/etc/frr).
  - This is the gpucloud lab's stand-in for SSH to a real leaf switch. The fabric lab (C(python -m lab.fabric_lab up))
    emulates each switch with Linux namespaces held by one holder process and writes an inventory with
    C(ansible_connection=gpucloud.infra.nsenter) and C(ansible_nsenter_pid) per switch; against real switches the
    same roles run over SSH.
  - Needs root on the controller (nsenter into another mount namespace needs CAP_SYS_ADMIN). Become is not
    supported; the commands already run as root.
author: gpucloud contributors
version_added: 1.0.0
options:
  nsenter_pid:
    description:
      - Process id whose namespaces the commands enter (the switch's holder process in the fabric lab).
    type: int
    required: true
    vars:
      - name: ansible_nsenter_pid
  nsenter_executable:
    description:
      - The nsenter binary on the controller.
    type: str
    default: nsenter
    vars:
      - name: ansible_nsenter_executable
extends_documentation_fragment:
  - connection_pipelining
notes:
  - The remote user is ignored; commands run as the user running Ansible (root).
"""

EXAMPLES = r"""
# inventory written by the fabric lab
all:
  children:
    role_leaf:
      hosts:
        leaf1:
          ansible_connection: gpucloud.infra.nsenter
          ansible_nsenter_pid: 12345
          ansible_python_interpreter: /usr/bin/python3
"""

import os
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

NAMESPACES = ("--mount", "--uts", "--net", "--ipc")


class Connection(ConnectionBase):
    """Commands and file transfers inside another process's namespaces."""

    transport = "gpucloud.infra.nsenter"
    has_pipelining = True
    # Become would have to run inside the namespaces too; the lab runs as root and needs none.
    become_methods: frozenset = frozenset()

    def _prefix(self) -> list[str]:
        pid = self.get_option("nsenter_pid")
        if not pid:
            raise AnsibleConnectionFailure("gpucloud.infra.nsenter needs ansible_nsenter_pid (the target process id)")
        if not os.path.exists(f"/proc/{int(pid)}/ns/mnt"):
            raise AnsibleConnectionFailure(f"gpucloud.infra.nsenter: no process {pid} (is the fabric lab up?)")
        # A stale inventory (lab gone, pid reused by a host process) must never turn the controller itself into
        # the "switch": the target has to live in other mount and network namespaces than this process.
        shared = [ns for ns in ("mnt", "net") if os.stat(f"/proc/{int(pid)}/ns/{ns}").st_ino
                  == os.stat(f"/proc/self/ns/{ns}").st_ino]
        if shared:
            raise AnsibleConnectionFailure(f"gpucloud.infra.nsenter: process {pid} shares this host's "
                                           f"{' and '.join(shared)} namespace; it is not a switch (stale inventory?)")
        executable = shutil.which(self.get_option("nsenter_executable"))
        if not executable:
            raise AnsibleConnectionFailure(f"{self.get_option('nsenter_executable')} not found on the controller")
        return [executable, "--target", str(int(pid)), *NAMESPACES, "--"]

    def _connect(self):
        if not self._connected:
            self._prefix()  # fail early with a clear message when the target is gone
            display.vvv(f"ESTABLISH NSENTER CONNECTION TO PID {self.get_option('nsenter_pid')}",
                        host=self._play_context.remote_addr)
            self._connected = True
        return self

    def _run(self, argv: list[str], in_data: bytes | None = None, stdin=None) -> tuple[int, bytes, bytes]:
        proc = subprocess.Popen(self._prefix() + argv, stdin=stdin if stdin is not None else subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data if stdin is None else None)
        return proc.returncode, stdout, stderr

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        shell = self._play_context.executable or "/bin/sh"
        display.vvv(f"EXEC {cmd}", host=self._play_context.remote_addr)
        return self._run([shell, "-c", to_native(cmd)], in_data=in_data or b"")

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._play_context.remote_addr)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
            rc, _out, err = self._run(["dd", f"of={out_path}", "bs=65536", "status=none"], stdin=source)
        if rc:
            raise AnsibleError(f"failed to transfer {in_path} to {out_path}: {to_native(err)}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._play_context.remote_addr)
        rc, out, err = self._run(["cat", "--", in_path])
        if rc:
            raise AnsibleError(f"failed to fetch {in_path}: {to_native(err)}")
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as target:
            target.write(out)

    def close(self) -> None:
        self._connected = False
