"""Tenant isolation, proven with packets on the fabric lab and applied by the fabric_tenant role's own run.

Two eBGP leaves under two spines (lab/fabric_lab.py: namespaces, FRR, veth cables), two tenants with
IDENTICAL prefixes and a server of each on both leaves (tests/fixtures/fabric/lab-inputs.yml). The configs
come from fabric_config + fabric_render (what gpucloud.infra.fabric_config returns) and reach the switches
only through ansible-playbook running the role over the gpucloud.infra.nsenter connection.

The steps build on each other through module-scoped fixtures: check mode on bare switches (nothing changes), then
apply, then apply again and check mode again (nothing changes). Removing a tenant is proven on the NetBox-driven
fabric (tests/test_tenant_network_playbook.py). EVPN convergence is polled with timeouts; nothing asserts a duration.
"""

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from conftest import recaps, wait_until
from lab.fabric_lab import FabricLab, attachment_servers, probe, rendered_switches
from lab.settings import load

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "fabric" / "lab-inputs.yml"
TOOLS = ["/usr/lib/frr/zebra", "/usr/lib/frr/frr-reload.py", "/usr/sbin/ifreload", "/usr/bin/vtysh", "/usr/bin/ping"]
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not all(Path(t).exists() for t in TOOLS),
                                reason="needs root, FRR (frr, frr-pythontools), ifupdown2 and iputils-ping")

UNDERLAY = ["10.255.0.1", "10.255.0.2", "10.255.255.1", "172.16.1.1", "172.16.2.0"]


class Fabric:
    def __init__(self, lab: FabricLab, inputs: dict):
        self.lab, self.inputs = lab, inputs
        self.servers = {s["name"]: s for s in attachment_servers(inputs)}

    def playbook(self, inputs: dict, *args: str) -> dict:
        """Render inputs and run the role on every switch; the recap per switch."""
        proc = self.lab.apply(rendered_switches(inputs), *args)
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
        return recaps(proc)

    def snapshot(self) -> dict:
        """What the role may change on each switch: links, files, FRR's running configuration, VRF netns."""
        return {sw: (self.links(sw), self.lab.sw(sw, "cat", "/etc/network/interfaces").stdout,
                     self.lab.sw(sw, "cat", "/etc/frr/frr.conf", check=False).stdout,
                     self.lab.vtysh(sw, "show running-config"), self.lab.sw(sw, "ip", "netns", "list").stdout)
                for sw in self.inputs["fabric"]["switches"]}

    def links(self, switch: str) -> list[tuple[str, bool]]:
        """(name, administratively up) of the switch's interfaces; carrier comes and goes on its own."""
        return sorted((link["ifname"], "UP" in link["flags"])
                      for link in json.loads(self.lab.sw(switch, "ip", "-j", "link", "show").stdout))

    def server(self, tenant: str, switch: str) -> str:
        return next(n for n, s in self.servers.items() if s["tenant"] == tenant and s["switch"] == switch)

    def address(self, server: str) -> str:
        return self.servers[server]["address"].split("/")[0]

    def mac(self, server: str) -> str:
        return json.loads(self.lab.srv(server, "ip", "-j", "link", "show", "eth0").stdout)[0]["address"]

    def ping(self, server: str, target: str) -> bool:
        return self.lab.srv(server, "ping", "-c2", "-i0.2", "-W1", target).returncode == 0

    def converged(self, inputs: dict) -> bool:
        return self.lab.converged(rendered_switches(inputs))


@pytest.fixture(scope="module")
def fabric():
    inputs = yaml.safe_load(FIXTURE.read_text())
    inputs["fabric"]["vrf_backend"] = probe()
    lab = FabricLab(load().state / "fabric-test")
    started = time.monotonic()
    lab.up(inputs)
    print(f"fabric lab up in {time.monotonic() - started:.1f}s")
    yield Fabric(lab, inputs)
    lab.down()


@pytest.fixture(scope="module")
def first_check(fabric):
    before = fabric.snapshot()
    recap = fabric.playbook(fabric.inputs, "--check")
    return before, recap, fabric.snapshot()


@pytest.fixture(scope="module")
def applied(fabric, first_check):
    recap = fabric.playbook(fabric.inputs)
    wait_until(lambda: fabric.converged(fabric.inputs), "EVPN converged")
    return recap


def test_check_mode_reports_changes_and_changes_nothing(first_check):
    before, recap, after = first_check
    assert all(r["changed"] > 0 and r["failed"] == 0 for r in recap.values()), recap
    assert after == before


def test_apply_configures_every_switch(applied):
    assert all(r["changed"] > 0 and r["failed"] == 0 for r in applied.values()), applied


def test_apply_again_and_check_mode_change_nothing(fabric, applied):
    before = fabric.snapshot()
    again = fabric.playbook(fabric.inputs)
    checked = fabric.playbook(fabric.inputs, "--check")
    assert {sw: (r["changed"], r["failed"]) for sw, r in again.items()} == dict.fromkeys(again, (0, 0))
    assert {sw: r["changed"] for sw, r in checked.items()} == dict.fromkeys(checked, 0)
    assert fabric.snapshot() == before


@pytest.mark.parametrize("tenant", ["red", "blue"])
def test_same_tenant_servers_reach_each_other_across_leaves(fabric, applied, tenant):
    here, there = fabric.server(tenant, "leaf1"), fabric.server(tenant, "leaf2")
    wait_until(lambda: fabric.ping(here, fabric.address(there)), f"{here} reaches {there}")
    neigh = json.loads(fabric.lab.srv(here, "ip", "-j", "neigh", "show", fabric.address(there), "dev", "eth0").stdout)
    assert neigh and neigh[0]["lladdr"] == fabric.mac(there), "the answer came from the other tenant's server"


@pytest.mark.parametrize("tenant", ["red", "blue"])
def test_other_tenant_with_the_identical_address_is_unreachable(fabric, applied, tenant):
    other = "blue" if tenant == "red" else "red"
    here, foreign = fabric.server(tenant, "leaf1"), fabric.server(other, "leaf2")
    wait_until(lambda: fabric.ping(here, fabric.address(fabric.server(tenant, "leaf2"))), "own tenant converged")
    # Force a frame to the foreign server's MAC, which owns the probed address: it must never arrive.
    probe_ip = "10.10.0.99"
    fabric.lab.srv(here, "ip", "neigh", "replace", probe_ip, "lladdr", fabric.mac(foreign), "dev", "eth0", check=True)
    fabric.lab.srv(foreign, "ip", "addr", "add", f"{probe_ip}/32", "dev", "eth0", check=True)
    try:
        assert fabric.lab.reachable([(here, probe_ip)]) == set()
    finally:
        fabric.lab.srv(foreign, "ip", "addr", "del", f"{probe_ip}/32", "dev", "eth0")
        fabric.lab.srv(here, "ip", "neigh", "del", probe_ip, "dev", "eth0")
    own_bridge = f"br{next(v['vid'] for t in fabric.inputs['tenants'] if t['tenant'] == tenant for v in t['vlans'])}"
    for switch in ("leaf1", "leaf2"):
        fdb = fabric.lab.sw(switch, "bridge", "fdb", "show", "br", own_bridge).stdout
        for name in (fabric.server(other, "leaf1"), fabric.server(other, "leaf2")):
            assert fabric.mac(name) not in fdb, f"{other}'s {name} is in {tenant}'s {own_bridge} on {switch}"


def test_tenants_cannot_reach_underlay_or_vteps(fabric, applied):
    servers = [fabric.server(tenant, leaf) for tenant in ("red", "blue") for leaf in ("leaf1", "leaf2")]
    assert fabric.lab.reachable([(server, target) for server in servers for target in UNDERLAY]) == set()
