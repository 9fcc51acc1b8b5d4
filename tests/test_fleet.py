"""The demo-fleet generator: a deterministic plan, written to the real NetBox in bulk."""

from collections import Counter

import pytest

from lab.fleet import apply
from lab.fleet_plan import ROW_MODELS, TENANTS, plan


def test_plan_is_deterministic():
    assert plan(32) == plan(32)


@pytest.mark.parametrize("nodes", [1, 32, 2000, 4000])
def test_plan_is_consistent_at_any_size(nodes):
    fleet = plan(nodes)
    assert len(fleet.servers) == nodes
    names = [s.name for s in fleet.servers] + [sw.name for sw in fleet.switches]
    assert len(names) == len(set(names)), "device names must be unique"
    ports = Counter((s.leaf, s.leaf_port) for s in fleet.servers)
    ports += Counter((s.ib_leaf, s.ib_port) for s in fleet.servers)
    assert max(ports.values()) == 1, "a switch port carries one server"
    assert len({s.bmc_ip for s in fleet.servers}) == nodes
    assert all(s.bmc_ip.startswith("127.100.") and s.mgmt_ip.startswith("127.101.") for s in fleet.servers)
    racks = Counter(s.rack for s in fleet.servers)
    assert max(racks.values()) <= 18
    if nodes >= 32:
        assert len(fleet.sites) >= 2
        assert {s.device_type for s in fleet.servers} == set(ROW_MODELS)
        assert {s.tenant for s in fleet.servers} == {t for t, _ in TENANTS} | {None}


def test_nvlink_domains_follow_the_hardware():
    fleet = plan(64)
    domains = Counter(s.nvlink_domain for s in fleet.servers)
    for server in fleet.servers:
        if server.device_type == "gb200-nvl72-tray":
            assert server.nvlink_domain == f"nvl72-{server.rack}"
        else:
            assert domains[server.nvlink_domain] == 1, "an HGX board is its own NVLink domain"


def test_bad_size_is_refused():
    with pytest.raises(ValueError, match="--nodes"):
        plan(0)


def test_generated_fleet_matches_the_plan(fleet, nb):
    servers = {d["name"]: d for d in nb.list("dcim/devices", role="gpu-server",
                                             fields="id,name,tenant,rack,primary_ip4,oob_ip,custom_fields")}
    assert set(servers) == {s.name for s in fleet.servers}
    for s in fleet.servers:
        dev = servers[s.name]
        assert (dev["tenant"] or {}).get("slug") == s.tenant
        assert dev["rack"]["name"] == s.rack
        assert dev["primary_ip4"]["address"] == s.mgmt_ip
        assert dev["oob_ip"]["address"] == s.bmc_ip
        assert dev["custom_fields"]["nvlink_domain"] == s.nvlink_domain
        assert dev["custom_fields"]["bmc_credential_ref"].startswith("env:")
    assert nb.get("dcim/cables", limit=1)["count"] == len(fleet.cables)
    switches = nb.list("dcim/devices", role=["leaf", "spine", "ib-switch"], fields="id,name")
    assert {d["name"] for d in switches} == {sw.name for sw in fleet.switches}


def test_generator_rerun_creates_nothing(fleet, nb, lab_env):
    from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox

    before = nb.get("core/object-changes", limit=1)["count"]
    apply(NetBox(lab_env["NETBOX_URL"], lab_env["NETBOX_TOKEN"]), fleet, progress=lambda _msg: None)
    assert nb.get("core/object-changes", limit=1)["count"] == before
