"""The fabric lab harness (lab/fabric_lab.py) and the gpucloud.infra.nsenter connection, on a one-leaf-one-spine lab."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, run
from lab.fabric_lab import FabricLab, cables, name_prefix, probe
from lab.settings import load

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/lib/frr/zebra").exists(),
                                reason="needs root and FRR")

INPUTS = {
    "fabric": {"evpn_asn": 65000, "anycast_gateway_mac": "00:00:5e:00:01:01", "vrf_backend": "netns", "switches": {
        "leaf1": {"platform": "linux", "asn": 65101, "router_id": "10.255.0.1", "uplinks": [
            {"interface": "swp63", "ip_address": "172.16.9.1/31", "peer_ip": "172.16.9.0", "peer_asn": 65001}]},
        "spine1": {"platform": "linux", "asn": 65001, "router_id": "10.255.255.1", "uplinks": [
            {"interface": "swp1", "ip_address": "172.16.9.0/31", "peer_ip": "172.16.9.1", "peer_asn": 65101}]}}},
    "tenants": [{"tenant": "red", "vrf": "vrf50001", "rd": "65000:1", "l3vni": 50001,
                 "route_targets": {"import": ["65000:50001"], "export": ["65000:50001"]},
                 "vlans": [{"name": "compute", "vid": 10, "l2vni": 10010, "prefix": "10.10.0.0/24",
                            "gateway": "10.10.0.1"}]}],
    "attachments": [{"switch": "leaf1", "interface": "swp1", "tenant": "red", "vlan": "compute"}],
}


@pytest.fixture(scope="module")
def lab():
    fabric = FabricLab(load().state / "fabric-harness-test")
    fabric.up(INPUTS)
    yield fabric
    fabric.down()


def test_probe_picks_a_backend_the_renderers_know():
    assert probe() in ("device", "netns")


def test_cables_pair_uplinks_that_face_each_other():
    assert cables(INPUTS["fabric"]["switches"]) == [("leaf1", "swp63", "spine1", "swp1")]


def test_names_depend_on_the_state_directory(tmp_path):
    assert name_prefix(tmp_path / "a") != name_prefix(tmp_path / "b")
    assert len(name_prefix(tmp_path / "a")) < 10


def test_each_switch_has_its_own_hostname_config_dirs_and_frr(lab):
    for switch in ("leaf1", "spine1"):
        assert lab.sw(switch, "hostname").stdout.strip() == switch
        assert lab.sw(switch, "cat", "/etc/network/interfaces").stdout.startswith("auto lo")
        assert lab.sw(switch, "ls", "/run/netns").stdout == ""  # other labs' and servers' netns are hidden
        assert f"({switch}) on Linux" in lab.vtysh(switch, "show version")
    assert lab.status() == {"leaf1": {"holder": lab.holder_pid("leaf1"), "frr": 3},
                            "spine1": {"holder": lab.holder_pid("spine1"), "frr": 3}}


def test_cables_and_servers_are_wired(lab):
    links = json.loads(lab.sw("leaf1", "ip", "-j", "link", "show").stdout)
    assert {"swp1", "swp63"} <= {link["ifname"] for link in links}
    server = "red-leaf1-swp1"
    addr = json.loads(lab.srv(server, "ip", "-j", "-4", "addr", "show", "eth0").stdout)
    assert addr[0]["addr_info"][0]["local"] == "10.10.0.11"


def test_up_is_idempotent_and_down_removes_everything(lab, tmp_path):
    holders = lab.state()["holders"]
    assert lab.up(INPUTS)["holders"] == holders  # same topology: kept as it is
    other = FabricLab(tmp_path / "second")
    other.up(INPUTS)
    assert other.prefix != lab.prefix and lab.status()["leaf1"]["holder"] == holders["leaf1"]
    assert other.down() is True
    assert other.down() is False
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(other.prefix)]
    assert not (tmp_path / "second").exists()
    assert lab.status()["leaf1"] == {"holder": holders["leaf1"], "frr": 3}  # the first lab is untouched


def test_nsenter_connection_runs_commands_and_copies_files(lab, tmp_path):
    playbook = tmp_path / "probe.yml"
    playbook.write_text("""\
- name: Probe a switch
  hosts: leaf1
  gather_facts: false
  tasks:
    - name: Hostname
      ansible.builtin.command: hostname
      register: probe_hostname
      changed_when: false
    - name: Copy a file into the switch's own /etc/frr
      ansible.builtin.copy:
        content: "hello from {{ inventory_hostname }}\\n"
        dest: /etc/frr/probe.txt
        mode: "0644"
    - name: Fetch it back
      ansible.builtin.fetch:
        src: /etc/frr/probe.txt
        dest: "{{ fetched }}"
        flat: true
    - name: Show
      ansible.builtin.debug:
        msg: "HOSTNAME={{ probe_hostname.stdout }}"
""")
    fetched = tmp_path / "fetched.txt"
    proc = run([str(BIN / "ansible-playbook"), "-i", str(lab.inventory), str(playbook), "-e", f"fetched={fetched}"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "HOSTNAME=leaf1" in proc.stdout
    assert fetched.read_text() == "hello from leaf1\n"
    assert (lab.switch_dir("leaf1") / "etc-frr" / "probe.txt").read_text() == "hello from leaf1\n"
    assert not Path("/etc/frr/probe.txt").exists()  # the host's /etc/frr is not the switch's


def test_nsenter_connection_is_documented():
    proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "connection", "gpucloud.infra.nsenter"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert "nsenter_pid" in proc.stdout and "SSH" in proc.stdout
