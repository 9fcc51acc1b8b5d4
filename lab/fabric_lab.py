# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The switch lab: a leaf/spine fabric emulated with Linux namespaces, driven by the fabric_config INPUT.

A switch is a network namespace plus one long-lived holder process that owns the switch's UTS namespace
(hostname = switch name), IPC namespace and a private mount namespace. In that mount namespace per-switch
directories are bind-mounted over /etc/network, /etc/frr, /run/frr, /run/network, /var/tmp/network and
/var/log/frr (directories, not files, so Ansible's write-then-rename works) and /run/netns is an rbind of a
shared per-switch directory (FRR's netns VRF backend treats every file in /run/netns as a VRF, and VRF netns
added later must propagate into the running zebra's view). FRR (zebra, bgpd, staticd) runs inside it with its
default paths. Ansible reaches a switch with the gpucloud.infra.nsenter connection (the stand-in for SSH).

Cables are veth pairs: between switch uplinks whose addresses face each other, and from a switch port to a
server namespace's eth0. Nothing here configures a switch: ifupdown2 and frr-reload (the fabric_tenant role)
do that, the lab only gives them an empty switch.

Names carry a prefix derived from the lab's state directory, so a second checkout gets its own namespaces.
Everything is torn down by pid file and by that prefix only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lab.proc import LabError
from lab.settings import Settings, load

FRR_DAEMONS = ("zebra", "bgpd", "staticd")
FRR_BIN = Path("/usr/lib/frr")
# Mount points of the switch's private mount namespace -> per-switch directory names.
SWITCH_DIRS = {"/etc/network": "etc-network", "/etc/frr": "etc-frr", "/run/frr": "run-frr",
               "/run/network": "run-network", "/var/tmp/network": "var-tmp-network", "/var/log/frr": "log-frr"}
FRR_OWNED = ("etc-frr", "run-frr", "log-frr")
NETNS_DIR = Path("/run/netns")
REPO = Path(__file__).resolve().parent.parent
APPLY_PLAYBOOK = """\
- name: Apply the tenant fabric
  hosts: role_leaf:role_spine
  gather_facts: false
  roles:
    - role: fabric_tenant
      vars:
        fabric_tenant_switch: "{{ fabric_switches[inventory_hostname] }}"
"""
SYSTEM_PYTHON = "/usr/bin/python3"
INITIAL_INTERFACES = "auto lo\niface lo inet loopback\n"

# Runs as the holder: already in the switch netns and in fresh mount/UTS/IPC namespaces (mounts slave to the host).
HOLDER_SCRIPT = r"""
set -e
dir=$1; name=$2
hostname "$name"
umount -l /sys && mount -t sysfs sysfs /sys   # ifupdown2 reads /sys/class/net: show this netns's devices
for pair in $MOUNTS; do
  target=${pair%%=*}; source=$dir/${pair#*=}
  mkdir -p "$target" && mount --bind "$source" "$target"
done
mkdir -p /run/netns && mount --rbind "$dir/netns" /run/netns
echo $$ > "$dir/holder.pid"
exec sleep infinity
"""


def lab_root(s: Settings) -> Path:
    return s.state / "fabric"


def name_prefix(root: Path) -> str:
    """Namespace name prefix unique to this lab's state directory."""
    return "gf" + hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:6] + "-"


def _run(cmd: list[str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and proc.returncode:
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}".strip())
    return proc


def _wait(predicate, what: str, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise LabError(f"fabric lab: {what} did not happen within {timeout:.0f}s")
        time.sleep(interval)


def probe(prefix: str = "gfprobe") -> str:
    """'device' when the kernel has VRF devices and VLAN-aware bridges (Cumulus-style leaf), else 'netns'."""
    ns = f"{prefix}{os.getpid()}"
    _run(["ip", "netns", "add", ns])
    try:
        vrf = _run(["ip", "-n", ns, "link", "add", "pvrf", "type", "vrf", "table", "10"], check=False)
        bridge = _run(["ip", "-n", ns, "link", "add", "pbr", "type", "bridge", "vlan_filtering", "1"], check=False)
        return "device" if vrf.returncode == 0 and bridge.returncode == 0 else "netns"
    finally:
        _run(["ip", "netns", "del", ns], check=False)


# ---------------------------------------------------------------------------------------------- topology
def cables(switches: dict) -> list[tuple[str, str, str, str]]:
    """(switch a, interface a, switch b, interface b) for every pair of uplinks that face each other."""
    ends = {}
    for name, switch in switches.items():
        for uplink in switch.get("uplinks", []):
            local = str(ipaddress.ip_interface(uplink["ip_address"]).ip)
            ends[(local, uplink["peer_ip"])] = (name, uplink["interface"])
    found = []
    for (local, peer), (name, iface) in sorted(ends.items()):
        other = ends.get((peer, local))
        if other and (name, iface) < other:
            found.append((name, iface, *other))
    return found


def attachment_servers(inputs: dict, first_host: int = 11) -> list[dict]:
    """One server per attachment: the n-th port of a tenant VLAN gets the prefix's host first_host+n.

    Tenants with identical prefixes get identical server addresses, which is what isolation tests want.
    """
    tenants = {t["tenant"]: t for t in inputs["tenants"]}
    counters: dict[tuple, int] = {}
    servers = []
    for att in sorted(inputs["attachments"], key=lambda a: (a["tenant"], str(a["vlan"]), a["switch"], a["interface"])):
        vlan = next(v for v in tenants[att["tenant"]]["vlans"] if att["vlan"] in (v["name"], v["vid"]))
        key = (att["tenant"], vlan["vid"])
        index = counters[key] = counters.get(key, -1) + 1
        net = ipaddress.ip_network(vlan["prefix"])
        servers.append({"name": f"{att['tenant']}-{att['switch']}-{att['interface']}", "switch": att["switch"],
                        "interface": att["interface"], "tenant": att["tenant"], "vlan": vlan["vid"],
                        "address": f"{net.network_address + first_host + index}/{net.prefixlen}",
                        "gateway": vlan["gateway"]})
    return servers


def rendered_switches(inputs: dict) -> dict[str, dict]:
    """{switch: {platform, config, files}}: what gpucloud.infra.fabric_config returns (the role's input)."""
    from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config, fabric_render

    if hasattr(fabric_config, "switch_files"):  # the module's own code, when it is there
        return fabric_config.switch_files(inputs)
    config = fabric_config.build(inputs)
    return {name: {"platform": c["platform"], "config": c, "files": fabric_render.render(c)}
            for name, c in config.items()}


def switch_roles(inputs: dict) -> dict[str, str]:
    """leaf when the switch has a server port, else spine."""
    attached = {a["switch"] for a in inputs["attachments"]}
    return {name: "leaf" if name in attached else "spine" for name in inputs["fabric"]["switches"]}


# ---------------------------------------------------------------------------------------------- the lab
class FabricLab:
    """One fabric lab under root (default: <lab state>/fabric)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else lab_root(load())
        self.prefix = name_prefix(self.root)
        self.state_file = self.root / "lab.json"

    # -- naming
    def switch_ns(self, switch: str) -> str:
        return f"{self.prefix}{switch}"

    def server_ns(self, server: str) -> str:
        return f"{self.prefix}s-{server}"

    def switch_dir(self, switch: str) -> Path:
        return self.root / "switches" / switch

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    def state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def holder_pid(self, switch: str) -> int | None:
        try:
            pid = int((self.switch_dir(switch) / "holder.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if self._in_netns(pid, self.switch_ns(switch)) else None

    @staticmethod
    def _in_netns(pid: int, ns: str) -> bool:
        """True when pid is alive and lives in the named netns (a recycled pid never matches)."""
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(NETNS_DIR / ns).st_ino
        except OSError:
            return False

    # -- commands
    def sw(self, switch: str, *cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command on a switch (its netns, hostname and mount namespace)."""
        pid = self.holder_pid(switch)
        if pid is None:
            raise LabError(f"fabric lab: switch {switch} is not up")
        return _run(["nsenter", "--target", str(pid), "--mount", "--uts", "--net", "--ipc", "--", *cmd],
                    check=check, input=input)

    def vtysh(self, switch: str, *commands: str) -> str:
        args = [a for c in commands for a in ("-c", c)]
        return self.sw(switch, "vtysh", *args).stdout

    def srv(self, server: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess:
        """Run a command in a server namespace."""
        return _run(["ip", "netns", "exec", self.server_ns(server), *cmd], check=check)

    # -- bring-up
    def up(self, inputs: dict, servers: list[dict] | None = None, roles: dict[str, str] | None = None,
           backend: str | None = None) -> dict:
        """Build the lab for `inputs` (idempotent: an identical lab that is up is kept). Returns the state."""
        switches = inputs["fabric"]["switches"]
        backend = backend or inputs["fabric"].get("vrf_backend") or probe()
        servers = attachment_servers(inputs) if servers is None else servers
        roles = roles or switch_roles(inputs)
        wanted = {"prefix": self.prefix, "backend": backend, "roles": roles, "servers": servers,
                  "switches": {n: {"uplinks": s.get("uplinks", [])} for n, s in sorted(switches.items())}}
        current = self.state()
        if {k: current.get(k) for k in wanted} == wanted and all(self.holder_pid(n) for n in switches):
            return current
        self.down()
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        for name in sorted(switches):
            self._add_switch(name)
        for a, ia, b, ib in cables(switches):
            self._cable(self.switch_ns(a), ia, self.switch_ns(b), ib)
        for server in servers:
            self._add_server(server)
        for name in sorted(switches):
            self._start_frr(name, backend)
        state = {**wanted, "holders": {n: self.holder_pid(n) for n in sorted(switches)},
                 "seconds": round(time.monotonic() - started, 2)}
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")
        self._write_inventory(state)
        return state

    def _add_switch(self, name: str) -> None:
        d = self.switch_dir(name)
        for sub in [*SWITCH_DIRS.values(), "netns"]:
            (d / sub).mkdir(parents=True, exist_ok=True)
        etc_network = d / "etc-network"
        if Path("/etc/network/ifupdown2").is_dir():
            shutil.copytree("/etc/network/ifupdown2", etc_network / "ifupdown2", dirs_exist_ok=True)
        for sub in ("interfaces.d", "if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"):
            (etc_network / sub).mkdir(exist_ok=True)
        (etc_network / "interfaces").write_text(INITIAL_INTERFACES)
        for conf in ("daemons", "vtysh.conf"):
            if Path("/etc/frr", conf).is_file():
                shutil.copy2(Path("/etc/frr", conf), d / "etc-frr" / conf)
        for sub in FRR_OWNED:
            shutil.chown(d / sub, "frr", "frr")
            for child in (d / sub).iterdir():
                shutil.chown(child, "frr", "frr")
        # A shared mount, so VRF netns added later (by the role, inside the switch) reach running daemons.
        netns = d / "netns"
        if _run(["mountpoint", "-q", str(netns)], check=False).returncode:
            _run(["mount", "--bind", str(netns), str(netns)])
        _run(["mount", "--make-shared", str(netns)])
        ns = self.switch_ns(name)
        _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for sysctl in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):  # a switch routes
            _run(["ip", "netns", "exec", ns, "sysctl", "-qw", sysctl])
        mounts = " ".join(f"{target}={sub}" for target, sub in SWITCH_DIRS.items())
        log = (d / "holder.log").open("w")
        # setsid -f: the holder is nobody's child, so it never lingers as a zombie of a test process.
        subprocess.run(["setsid", "-f", "nsenter", f"--net={NETNS_DIR / ns}", "--", "unshare", "--mount", "--uts",
                        "--ipc", "--propagation", "slave", "--", "/bin/sh", "-c", HOLDER_SCRIPT, "holder", str(d),
                        name], env={**os.environ, "MOUNTS": mounts}, stdout=log, stderr=log, check=True)
        _wait(lambda: self.holder_pid(name), f"holder of switch {name} ({d / 'holder.log'})")

    @staticmethod
    def _cable(ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        _run(["ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b])
        _run(["ip", "-n", ns_a, "link", "set", if_a, "up"])
        _run(["ip", "-n", ns_b, "link", "set", if_b, "up"])

    def _add_server(self, server: dict) -> None:
        ns = self.server_ns(server["name"])
        _run(["ip", "netns", "add", ns])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        self._cable(ns, "eth0", self.switch_ns(server["switch"]), server["interface"])
        if server.get("address"):
            _run(["ip", "-n", ns, "addr", "add", server["address"], "dev", "eth0"])
        if server.get("gateway"):
            _run(["ip", "-n", ns, "route", "add", "default", "via", server["gateway"]])

    def _start_frr(self, name: str, backend: str) -> None:
        run_frr = self.switch_dir(name) / "run-frr"
        for daemon in FRR_DAEMONS:
            extra = ["--vrfwnetns"] if daemon == "zebra" and backend == "netns" else []
            self.sw(name, str(FRR_BIN / daemon), "-d", "-P", "0", *extra, "--log",
                    f"file:/var/log/frr/{daemon}.log")
            socket = "zserv.api" if daemon == "zebra" else f"{daemon}.vty"
            _wait(lambda s=socket: (run_frr / s).exists(), f"{daemon} on {name}")
        _wait(lambda: (run_frr / "zebra.vty").exists(), f"zebra vty on {name}")

    def _write_inventory(self, state: dict) -> None:
        groups: dict[str, dict] = {}
        for name, role in sorted(state["roles"].items()):
            groups.setdefault(f"role_{role}", {"hosts": {}})["hosts"][name] = {
                "ansible_nsenter_pid": state["holders"][name]}
        # No InfiniBand here: the subnet manager's stand-in is the controller, writing partitions.conf and the
        # UFM payload under the lab (there is no OpenSM to signal).
        opensm = self.root / "opensm"
        groups["opensm"] = {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "ib_partition_conf_path": str(opensm / "partitions.conf"),
            "ib_partition_ufm_payload_path": str(opensm / "ufm-pkeys.json"), "ib_partition_reload": False}}}
        # The switches' connection goes on their groups, not on `all`: the runner's cluster stages load this
        # inventory beside a tenant's servers. The VRF backend the lab runs is the fabric's, for every playbook.
        switch_vars = {"ansible_connection": "gpucloud.infra.nsenter", "ansible_python_interpreter": SYSTEM_PYTHON,
                       "ansible_pipelining": True}
        for name, group in groups.items():
            if name != "opensm":
                group["vars"] = switch_vars
        inventory = {"all": {"vars": {"tenant_network_vrf_backend": state["backend"]}, "children": groups}}
        self.inventory.write_text("# written by lab/fabric_lab.py (python -m lab.fabric_lab up)\n"
                                  + yaml.safe_dump(inventory, sort_keys=True))

    # -- teardown
    def _frr_pids(self, name: str) -> list[int]:
        pids = []
        for pidfile in (self.switch_dir(name) / "run-frr").glob("*.pid"):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if self._in_netns(pid, self.switch_ns(name)):
                pids.append(pid)
        return pids

    @staticmethod
    def _kill(pids: list[int], timeout: float = 10.0) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.05)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def down(self) -> bool:
        """Tear down everything of this lab (idempotent); True when something was running."""
        parent = self.root / "switches"
        switches = sorted(p.name for p in parent.iterdir()) if parent.is_dir() else []
        # FRR first (zebra takes a while to exit; all switches at once), then the holders.
        daemons = [pid for name in switches for pid in self._frr_pids(name)]
        self._kill(daemons)
        holders = [pid for pid in map(self.holder_pid, switches) if pid]
        self._kill(holders)
        found = bool(daemons or holders)
        for name in switches:
            netns = self.switch_dir(name) / "netns"
            for vrf in sorted(netns.iterdir()) if netns.is_dir() else []:
                _run(["umount", "-l", str(vrf)], check=False)
            if netns.is_dir():
                _run(["umount", "-l", str(netns)], check=False)
        for ns in sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []:
            if ns.startswith(self.prefix):
                _run(["ip", "netns", "del", ns], check=False)
                found = True
        if self.root.is_dir():
            shutil.rmtree(self.root, ignore_errors=True)
        return found

    def apply(self, switches: dict, *args: str) -> subprocess.CompletedProcess:
        """ansible-playbook running the fabric_tenant role on every switch of the lab with these rendered configs
        (what gpucloud.infra.fabric_config returns); extra args go to ansible-playbook (--check, --limit ...)."""
        work = self.root / "apply"
        work.mkdir(parents=True, exist_ok=True)
        (work / "site.yml").write_text(APPLY_PLAYBOOK)
        (work / "switches.json").write_text(json.dumps({"fabric_switches": switches}))
        return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory),
                               str(work / "site.yml"), "-e", f"@{work / 'switches.json'}", *args], cwd=REPO,
                              capture_output=True, text=True, env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"})

    def converged(self, switches: dict) -> bool:
        """Every L2VNI that more than one switch carries has a remote VTEP on each of them (the other leaves'
        type-3 routes arrived); switches as gpucloud.infra.fabric_config returns them."""
        carriers: dict[str, list[str]] = {}
        for name, entry in switches.items():
            for vlan in entry["config"]["vlans"]:
                carriers.setdefault(str(vlan["l2vni"]), []).append(name)
        for name in sorted({n for names in carriers.values() if len(names) > 1 for n in names}):
            vnis = json.loads(self.vtysh(name, "show evpn vni json") or "{}")
            if any(not (vnis.get(vni) or {}).get("numRemoteVteps")
                   for vni, names in carriers.items() if len(names) > 1 and name in names):
                return False
        return True

    def wait_converged(self, switches: dict, timeout: float = 120.0) -> float:
        """Seconds until converged(switches); LabError after timeout."""
        started = time.monotonic()
        _wait(lambda: self.converged(switches), "EVPN convergence (remote VTEPs of every stretched L2VNI)",
              timeout=timeout, interval=0.3)
        return time.monotonic() - started

    def reachable(self, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (server, address) pairs that answer a ping, all probed at once (a lost ping costs its timeout)."""
        procs = {pair: subprocess.Popen(["ip", "netns", "exec", self.server_ns(pair[0]), "ping", "-c2", "-i0.2", "-W1",
                                         pair[1]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for pair in pairs}
        return {pair for pair, proc in procs.items() if proc.wait() == 0}

    def status(self) -> dict:
        state = self.state()
        return {name: {"holder": self.holder_pid(name), "frr": len(self._frr_pids(name))}
                for name in sorted(state.get("switches", {}))}


def down_all(s: Settings) -> bool:
    """`lab down`: every fabric lab under the lab's state directory (the default one and the tests')."""
    roots = sorted(p for p in s.state.glob("fabric*") if (p / "switches").is_dir())
    stopped = [FabricLab(root).down() for root in roots]
    for root, was_up in zip(roots, stopped, strict=True):
        if was_up:
            print(f"  stopped fabric lab {root.name}")
    return any(stopped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.fabric_lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "probe", "render"])
    parser.add_argument("--inputs", type=Path, help="up, render: fabric_config INPUT (YAML); up sets its vrf_backend "
                        "from the kernel probe")
    parser.add_argument("--root", type=Path, help="lab directory (default: the lab state directory's fabric/)")
    parser.add_argument("--out", type=Path, help="render: write {switch: {platform, config, files}} JSON here")
    args = parser.parse_args(argv)
    lab = FabricLab(args.root)
    if args.command in ("up", "render") and not args.inputs:
        parser.error(f"{args.command} needs --inputs FILE")
    inputs = yaml.safe_load(args.inputs.read_text()) if args.inputs else None
    if inputs:
        inputs["fabric"]["vrf_backend"] = probe()
    try:
        if args.command == "render":
            text = json.dumps(rendered_switches(inputs), indent=2, sort_keys=True) + "\n"
            args.out.write_text(text) if args.out else print(text, end="")
        elif args.command == "up":
            state = lab.up(inputs)
            print(f"fabric lab up in {state['seconds']}s ({state['backend']} VRF backend); inventory {lab.inventory}")
        elif args.command == "down":
            print("fabric lab down" if lab.down() else "fabric lab: nothing was running")
        elif args.command == "probe":
            print(probe())
        else:
            status = lab.status()
            for name, info in status.items():
                print(f"  {name:16} holder {info['holder'] or '-'}  frr daemons {info['frr']}")
            return 0 if status and all(i["holder"] and i["frr"] == len(FRR_DAEMONS) for i in status.values()) else 1
    except LabError as exc:
        print(f"fabric lab {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
