"""The fabric config's inputs read from the lab NetBox (gpucloud.infra.fabric_inputs) and rendered
(gpucloud.infra.fabric_config): the seeded fleet's underlay, two allocated tenants, their servers' cables,
an untagged VLAN choosing the network, bad data reported at once, the modules through Ansible in check
mode, and a released tenant leaving the inputs."""

import ipaddress
import json
import time

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config, fabric_inputs, fabric_render
from ansible_collections.gpucloud.infra.plugins.module_utils import tenant_network as tn
from conftest import FLEET_NODES, ansible_playbook
from lab.seed import ensure_fleet

SITE = "dc1"
POOL = "tenant-fabric"
ALLOCATED = ("acme", "globex")  # initech keeps its servers but no allocation


@pytest.fixture(scope="module")
def allocated(settings, lab_env, fleet, nb):
    """acme and globex hold two networks each; the fleet is restored afterwards."""
    allocations = {t: tn.present(nb, t, POOL, 2)["allocation"] for t in ALLOCATED}
    yield allocations
    ensure_fleet(settings, lab_env, FLEET_NODES)


def read(nb, **kw):
    return fabric_inputs.read(nb, **{"site": SITE, **kw})


def site_switches(fleet):
    return {sw.name: sw for sw in fleet.switches if sw.site == SITE and sw.role in ("leaf", "spine")}


def test_inputs_are_valid_and_hold_every_allocated_tenant(allocated, nb):
    started = time.monotonic()
    result = read(nb)
    print(f"fabric_inputs.read at the {FLEET_NODES}-node seed: {time.monotonic() - started:.2f}s")
    inputs = result["inputs"]
    assert fabric_config.validate_inputs(inputs) == []
    assert inputs["tenants"] == [allocated[t] for t in sorted(ALLOCATED)]  # as tenant_network returns them
    fabric = inputs["fabric"]
    assert (fabric["evpn_asn"], fabric["anycast_gateway_mac"], fabric["vxlan_udp_port"]) == \
        (65000, "00:00:5e:00:01:01", 4789)
    assert fabric["vrf_backend"] == "device"


def test_switches_carry_asn_loopback_and_uplinks(allocated, fleet, nb):
    switches = read(nb)["inputs"]["fabric"]["switches"]
    planned = site_switches(fleet)
    assert set(switches) == set(planned)
    address = {(dev, port): addr for dev, port, addr in fleet.p2p}
    for name, sw in switches.items():
        assert sw["asn"] == planned[name].asn
        assert sw["router_id"] == sw["vtep_ip"] == str(ipaddress.ip_interface(planned[name].loopback).ip)
        assert sw["platform"] == "linux"
        expected = []
        for a, a_port, b, b_port in fleet.cables:
            for near, near_port, far, far_port in ((a, a_port, b, b_port), (b, b_port, a, a_port)):
                if near == name and far in planned:
                    expected.append({"interface": near_port, "ip_address": address[(near, near_port)],
                                     "peer_ip": str(ipaddress.ip_interface(address[(far, far_port)]).ip),
                                     "peer_asn": planned[far].asn})
        assert sorted(sw["uplinks"], key=str) == sorted(expected, key=str)
        assert expected, f"{name} has no uplinks in the plan"


@pytest.mark.parametrize("site", ["dc1", "dc2"])
def test_attachments_match_the_servers_cables(allocated, fleet, nb, site):
    result = read(nb, site=site)
    servers = [s for s in fleet.servers if s.site == site]
    expected = sorted((s.leaf, s.leaf_port, s.tenant, "net1") for s in servers if s.tenant in ALLOCATED)
    got = sorted((a["switch"], a["interface"], a["tenant"], a["vlan"]) for a in result["inputs"]["attachments"])
    assert got == expected and expected
    unallocated = {s.tenant for s in servers if s.tenant and s.tenant not in ALLOCATED}
    skipped = {s["tenant"]: s for s in result["left_out"]}
    assert set(skipped) == unallocated
    for tenant in unallocated:
        assert sorted(skipped[tenant]["ports"]) == sorted(
            f"{s.leaf} {s.leaf_port} ({s.name} eth0)" for s in servers if s.tenant == tenant)
    assert result["warnings"] == []
    assert fabric_config.validate_inputs(result["inputs"]) == []


def test_one_switch_still_learns_its_peers(allocated, fleet, nb):
    inputs = read(nb, site=None, switches=["leaf-dc1-r01"])["inputs"]
    full = read(nb)["inputs"]
    assert inputs["fabric"]["switches"] == {"leaf-dc1-r01": full["fabric"]["switches"]["leaf-dc1-r01"]}
    assert inputs["attachments"] == [a for a in full["attachments"] if a["switch"] == "leaf-dc1-r01"]
    assert inputs["tenants"] == full["tenants"]


@pytest.mark.parametrize("platform", ["linux", "sonic", "eos"])
def test_builds_and_renders_every_platform(allocated, nb, platform):
    inputs = read(nb)["inputs"]
    switches = fabric_config.switch_files(inputs, platform)
    assert set(switches) == set(inputs["fabric"]["switches"])
    for name, switch in switches.items():
        assert switch["platform"] == platform
        assert fabric_render.output_errors(platform, switch["files"]) == [], name
        assert switch["config"] == fabric_config.build(fabric_config._with_platform(inputs, platform))[name]
    leaf = switches["leaf-dc1-r01"]["config"]
    assert {v["tenant"] for v in leaf["vrfs"]} == set(ALLOCATED)
    assert {n["remote_as"] for n in leaf["bgp"]["neighbors"]} == {65100}


def _eth0(nb, server: str) -> dict:
    return nb.list("dcim/interfaces", device=server, name="eth0", fields="id,mode,untagged_vlan")[0]


def test_untagged_vlan_picks_the_network(allocated, fleet, nb):
    acme, globex = (next(s for s in fleet.servers if s.site == SITE and s.tenant == t) for t in ALLOCATED)
    vlans = {v["name"]: v["id"] for v in nb.list("ipam/vlans", group=POOL, fields="id,name")}
    eth0 = {s.name: _eth0(nb, s.name) for s in (acme, globex)}
    nb.update("dcim/interfaces", [
        {"id": eth0[acme.name]["id"], "mode": "access", "untagged_vlan": vlans["acme-net2"]},
        {"id": eth0[globex.name]["id"], "mode": "access", "untagged_vlan": vlans["acme-net1"]}])  # not globex's
    try:
        result = read(nb)
    finally:
        nb.update("dcim/interfaces", [{"id": i["id"], "mode": None, "untagged_vlan": None} for i in eth0.values()])
    by_port = {(a["switch"], a["interface"]): a for a in result["inputs"]["attachments"]}
    assert by_port[(acme.leaf, acme.leaf_port)]["vlan"] == "net2"
    assert by_port[(globex.leaf, globex.leaf_port)]["vlan"] == "net1"
    assert result["warnings"] == [f"{globex.leaf} {globex.leaf_port} ({globex.name} eth0): the untagged VLAN (id "
                                  f"{vlans['acme-net1']}) is not a network of tenant globex; using its first network "
                                  "net1"]
    config = fabric_config.build(result["inputs"])[acme.leaf]
    vid = allocated["acme"]["vlans"][1]["vid"]
    assert {"interface": acme.leaf_port, "vlan": vid, "tenant": "acme"} in config["access_ports"]


def test_bad_underlay_is_reported_at_once(allocated, nb):
    leaf = nb.list("dcim/devices", name="leaf-dc1-r02", fields="id,custom_fields")[0]
    loopback = nb.list("ipam/ip-addresses", device="leaf-dc1-r03", role="loopback", fields="id")[0]
    nb.update("dcim/devices", [{"id": leaf["id"], "custom_fields": {"bgp_asn": None}}])
    nb.update("ipam/ip-addresses", [{"id": loopback["id"], "role": ""}])
    try:
        with pytest.raises(fabric_inputs.FabricInputsError) as failed:
            read(nb)
    finally:
        nb.update("dcim/devices", [{"id": leaf["id"], "custom_fields": {"bgp_asn": leaf["custom_fields"]["bgp_asn"]}}])
        nb.update("ipam/ip-addresses", [{"id": loopback["id"], "role": "loopback"}])
    errors = failed.value.errors
    assert "leaf-dc1-r02: custom field bgp_asn is not set" in errors
    assert any(e.startswith("leaf-dc1-r03: expected one IP address with role loopback") for e in errors)
    assert any(e.startswith("spine-dc1-1 swp2: peer leaf-dc1-r02 has no custom field bgp_asn") for e in errors)


def test_bad_parameters_are_reported_at_once(nb):
    with pytest.raises(fabric_inputs.FabricInputsError) as failed:
        fabric_inputs.read(nb, site=None, vrf_backend="vrf", roles=[])
    assert [e.split(":")[0] for e in failed.value.errors] == ["site", "vrf_backend", "roles"]
    with pytest.raises(fabric_inputs.FabricInputsError) as failed:
        fabric_inputs.read(nb, switches=["leaf-dc1-r01", "no-such-leaf"], site="dc2", pool="no-pool")
    assert "pool: no VLAN group with slug 'no-pool' in NetBox" in failed.value.errors
    assert "switches: no device 'no-such-leaf' in NetBox" in failed.value.errors
    assert "switches: leaf-dc1-r01 is at site dc1, not dc2" in failed.value.errors


def run_play(tmp_path, tasks: list[dict], *flags):
    """A play on localhost; every task registers its result, and the results land in results.json."""
    for i, task in enumerate(tasks):
        task.update(name=f"task{i}", register=f"r{i}", ignore_errors=True)
    results = "{{ {" + ", ".join(f"'r{i}': r{i}" for i in range(len(tasks))) + "} | to_json }}"
    save = {"name": "results", "ansible.builtin.copy": {"content": results, "dest": str(tmp_path / "results.json")},
            "check_mode": False}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [*tasks, save]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    proc = ansible_playbook(str(tmp_path / "play.yml"), *flags)
    assert (tmp_path / "results.json").exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads((tmp_path / "results.json").read_text())


def test_modules_in_check_mode(allocated, nb, tmp_path):
    before = nb.get("core/object-changes", limit=1)["count"]
    out = run_play(tmp_path, [
        {"gpucloud.infra.fabric_inputs": {"site": SITE}},
        {"gpucloud.infra.fabric_config": {"inputs": "{{ r0.inputs }}"}},
        {"gpucloud.infra.fabric_config": {"inputs": "{{ r0.inputs }}", "platform": "sonic",
                                          "switches": ["leaf-dc1-r01"]}},
    ], "--check")
    assert nb.get("core/object-changes", limit=1)["count"] == before
    for result in out.values():
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is False
    assert out["r0"]["inputs"] == read(nb)["inputs"]
    assert set(out["r1"]["switches"]) == set(out["r0"]["inputs"]["fabric"]["switches"])
    assert set(out["r1"]["switches"]["leaf-dc1-r01"]["files"]) == {"interfaces", "frr.conf"}
    assert list(out["r2"]["switches"]) == ["leaf-dc1-r01"]
    assert json.loads(out["r2"]["switches"]["leaf-dc1-r01"]["files"]["config_db.json"])["VXLAN_TUNNEL"]


def test_fabric_config_module_reports_every_error(allocated, nb, tmp_path):
    inputs = read(nb)["inputs"]
    inputs["fabric"]["switches"]["leaf-dc1-r01"]["asn"] = 0
    inputs["attachments"][0]["vlan"] = "no-such-network"
    out = run_play(tmp_path, [{"gpucloud.infra.fabric_config": {"inputs": inputs, "switches": ["nope"]}},
                              {"gpucloud.infra.fabric_inputs": {"site": SITE, "switches": ["nope"]}}])
    assert out["r0"]["failed"]
    errors = out["r0"]["errors"]
    assert any(e.startswith("fabric.switches.leaf-dc1-r01.asn:") for e in errors)
    assert any(e.startswith("attachments[0].vlan:") for e in errors)
    assert out["r1"]["failed"] and out["r1"]["errors"] == ["switches: no device 'nope' in NetBox"]


def test_released_tenant_leaves_the_inputs(allocated, nb):
    tn.present(nb, "initech", POOL, 1)
    with_initech = read(nb, site="dc2")  # initech's servers are in dc2
    assert [t["tenant"] for t in with_initech["inputs"]["tenants"]] == ["acme", "globex", "initech"]
    assert "initech" in {a["tenant"] for a in with_initech["inputs"]["attachments"]}
    assert with_initech["left_out"] == []
    assert fabric_config.validate_inputs(with_initech["inputs"]) == []
    tn.absent(nb, "initech", POOL)
    after = read(nb, site="dc2")
    assert [t["tenant"] for t in after["inputs"]["tenants"]] == ["acme", "globex"]
    assert "initech" not in {a["tenant"] for a in after["inputs"]["attachments"]}
    assert [s["tenant"] for s in after["left_out"]] == ["initech"]


@pytest.mark.parametrize(("name", "source", "target", "expected"), [
    ("swp1", "linux", "sonic", "Ethernet0"), ("swp64", "linux", "sonic", "Ethernet252"),
    ("swp63", "linux", "eos", "Ethernet63"), ("Ethernet8", "sonic", "linux", "swp3"),
    ("Ethernet3", "sonic", "eos", "Ethernet3"),  # not a SONiC port name: left alone
    ("eth0", "linux", "eos", "eth0")])
def test_port_names_follow_the_platform(name, source, target, expected):
    assert fabric_config.port_name(name, source, target) == expected


@pytest.mark.parametrize("nodes", [32, 5000])
def test_planned_underlay_is_unique_at_any_size(nodes):
    from lab.fleet_plan import LOOPBACK_NET, P2P_NET, SPINE_ASN, plan

    fleet = plan(nodes)
    ethernet = [sw for sw in fleet.switches if sw.role in ("leaf", "spine")]
    loopbacks = [ipaddress.ip_interface(sw.loopback) for sw in ethernet]
    assert len(set(loopbacks)) == len(ethernet) and all(lo.network.prefixlen == 32 for lo in loopbacks)
    assert all(lo.ip in LOOPBACK_NET for lo in loopbacks)
    assert {sw.asn for sw in ethernet if sw.role == "spine"} == {SPINE_ASN}
    for site in fleet.sites:  # a site is one fabric: its leaves' ASNs differ from each other and the spines'
        leaves = [sw.asn for sw in ethernet if sw.site == site and sw.role == "leaf"]
        assert len(set(leaves)) == len(leaves) and SPINE_ASN not in leaves
    addresses = {(dev, port): ipaddress.ip_interface(a) for dev, port, a in fleet.p2p}
    assert len(set(addresses.values())) == len(fleet.p2p) and all(a.ip in P2P_NET for a in addresses.values())
    for a, a_port, b, b_port in fleet.cables:
        if (a, a_port) in addresses:
            assert addresses[(a, a_port)].network == addresses[(b, b_port)].network
            assert addresses[(a, a_port)].network.prefixlen == 31
