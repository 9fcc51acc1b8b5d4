"""Tenant network allocation (gpucloud.infra.tenant_network) against the lab NetBox: allocate, re-run, check
mode, 20 tenants at once (and racing runs for one tenant), release, an exhausted pool, bad input; and the pure
logic (input validation, ranges, NetBox's uniqueness refusals, and that an allocation is a tenant of the
fabric config's input as it is)."""

import ipaddress
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config, fabric_render, fabric_schema
from ansible_collections.gpucloud.infra.plugins.module_utils import tenant_network as tn
from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_api import NetBox, NetBoxError
from conftest import ansible_playbook

RACERS = 20


def run_task(tmp_path, args: dict, *flags):
    """One gpucloud.infra.tenant_network task on localhost; returns (process, task result)."""
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": "task", "gpucloud.infra.tenant_network": args, "register": "out",
                        "ignore_errors": True},
                       {"name": "result", "ansible.builtin.copy": {
                           "content": "{{ out | to_json }}", "dest": str(tmp_path / "result.json")},
                        "check_mode": False}]}]
    book = tmp_path / "play.yml"
    book.write_text(json.dumps(play))
    (tmp_path / "result.json").unlink(missing_ok=True)
    proc = ansible_playbook(str(book), *flags)
    assert (tmp_path / "result.json").exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc, json.loads((tmp_path / "result.json").read_text())


def changes(nb) -> int:
    return nb.get("core/object-changes", limit=1)["count"]


def make_pool(nb, slug, vids, l3vni, l2vni, pkeys, container):
    """A second fabric's pools: a VLAN group with the pool ranges and its tenant prefix container."""
    name = f"Pool {slug}"
    nb.create("ipam/vlan-groups", [{"name": name, "slug": slug, "vid_ranges": [list(vids)],
                                    "custom_fields": {"pool_l3vni": l3vni, "pool_l2vni": l2vni,
                                                      "pool_ib_pkey": pkeys, "pool_evpn_asn": 65001}}])
    role = nb.list("ipam/roles", slug="tenant-pool")[0]["id"]
    nb.create("ipam/prefixes", [{"prefix": container, "status": "container", "role": role,
                                 "description": f"tenant subnets of {name}"}])
    return slug


def make_tenants(nb, names):
    nb.create("tenancy/tenants", [{"name": n, "slug": n} for n in names])
    return names


def held(nb, tenant_slug) -> dict:
    """What NetBox holds for a tenant, counted."""
    tenant = nb.list("tenancy/tenants", slug=tenant_slug)[0]
    return {"vrfs": nb.list("ipam/vrfs", tenant_id=tenant["id"]),
            "vlans": nb.list("ipam/vlans", tenant_id=tenant["id"]),
            "prefixes": nb.list("ipam/prefixes", tenant_id=tenant["id"]),
            "ib_pkey": tenant["custom_fields"]["ib_pkey"]}


def check_allocation(alloc, tenant, networks, asn=65000, container="10.200.0.0/16"):
    assert alloc["tenant"] == tenant and alloc["vrf"] == f"vrf{alloc['l3vni']}"
    assert alloc["rd"] == f"{asn}:{alloc['l3vni']}"
    assert alloc["route_targets"] == {"import": [alloc["rd"]], "export": [alloc["rd"]]}
    assert [v["name"] for v in alloc["vlans"]] == networks
    for vlan in alloc["vlans"]:
        net = ipaddress.ip_network(vlan["prefix"])
        assert net.subnet_of(ipaddress.ip_network(container))
        assert vlan["gateway"] == str(net.network_address + 1)
    assert isinstance(alloc["l3vni_vid"], int) and alloc["l3vni_vid"] not in [v["vid"] for v in alloc["vlans"]]
    assert alloc["ib_pkey"].startswith("0x") and len(alloc["ib_pkey"]) == 6
    assert fabric_schema.errors(alloc, fabric_schema.TENANT) == []  # feeds the fabric config as it is


# -- against NetBox ------------------------------------------------------------------------------------

@pytest.mark.netbox
def test_allocate_rerun_check_mode_and_release(restore_fleet_after, nb, tmp_path):
    args = {"tenant": "acme", "vlans": [{"name": "compute"}, {"name": "storage"}]}
    before = changes(nb)
    proc, checked = run_task(tmp_path, dict(args), "--check", "--diff")
    assert proc.returncode == 0 and checked["changed"], proc.stdout[-3000:]
    check_allocation(checked["allocation"], "acme", ["compute", "storage"])
    assert changes(nb) == before, "check mode must not write"
    assert held(nb, "acme") == {"vrfs": [], "vlans": [], "prefixes": [], "ib_pkey": None}

    proc, applied = run_task(tmp_path, dict(args), "--diff")
    assert proc.returncode == 0 and applied["changed"] and not applied.get("failed"), proc.stdout[-3000:]
    alloc = applied["allocation"]
    check_allocation(alloc, "acme", ["compute", "storage"])
    assert alloc["vrf"] in proc.stdout  # the diff shows the new VRF

    # NetBox holds exactly that: the VRF with its RD, RTs and L3VNI; VLANs in the pool's group with their
    # L2VNI and the L3VNI VLAN; a reservation in the container's table and the VRF's prefix per network VLAN;
    # the tenant's pkey.
    state = held(nb, "acme")
    (vrf,) = state["vrfs"]
    assert (vrf["name"], vrf["rd"], vrf["custom_fields"]["l3vni"]) == ("gpucloud-acme", alloc["rd"], alloc["l3vni"])
    assert [rt["name"] for rt in vrf["import_targets"]] == [alloc["rd"]] == [rt["name"] for rt in
                                                                             vrf["export_targets"]]
    by_vid = {v["vid"]: v for v in state["vlans"]}
    assert len(by_vid) == 3 and by_vid[alloc["l3vni_vid"]]["name"] == "acme-l3vni"
    assert by_vid[alloc["l3vni_vid"]]["group"]["slug"] == "tenant-fabric"
    assert not [p for p in state["prefixes"] if p["vlan"]["id"] == by_vid[alloc["l3vni_vid"]]["id"]]
    for vlan in alloc["vlans"]:
        nbvlan = by_vid[vlan["vid"]]
        assert nbvlan["group"]["slug"] == "tenant-fabric" and nbvlan["custom_fields"]["l2vni"] == vlan["l2vni"]
        mine = [p for p in state["prefixes"] if p["vlan"]["id"] == nbvlan["id"]]
        assert sorted((p["prefix"], (p["vrf"] or {}).get("name", "")) for p in mine) == sorted(
            [(vlan["prefix"], ""), (vlan["prefix"], "gpucloud-acme")])
    assert state["ib_pkey"] == alloc["ib_pkey"]

    for flags in ((), ("--check", "--diff")):  # same tenant, same allocation, nothing to do
        proc, again = run_task(tmp_path, dict(args), *flags)
        assert proc.returncode == 0 and not again["changed"], (flags, proc.stdout[-3000:])
        assert again["allocation"] == alloc
    # A third network is added; the first two keep theirs.
    proc, grown = run_task(tmp_path, {**args, "vlans": [*args["vlans"], {"name": "mgmt"}]})
    assert proc.returncode == 0 and grown["changed"]
    assert grown["allocation"]["vlans"][:2] == alloc["vlans"] and grown["allocation"]["l3vni"] == alloc["l3vni"]
    assert grown["allocation"]["l3vni_vid"] == alloc["l3vni_vid"]

    before = changes(nb)
    proc, checked = run_task(tmp_path, {"tenant": "acme", "state": "absent"}, "--check")
    assert proc.returncode == 0 and checked["changed"] and changes(nb) == before
    proc, released = run_task(tmp_path, {"tenant": "acme", "state": "absent"})
    assert proc.returncode == 0 and released["changed"], proc.stdout[-3000:]
    assert released["released"]["vrfs"] == ["gpucloud-acme"] and len(released["released"]["vlans"]) == 4
    assert held(nb, "acme") == {"vrfs": [], "vlans": [], "prefixes": [], "ib_pkey": None}
    assert nb.list("ipam/route-targets", name=alloc["rd"]) == []
    proc, again = run_task(tmp_path, {"tenant": "acme", "state": "absent"})
    assert proc.returncode == 0 and not again["changed"]


@pytest.mark.netbox
def test_twenty_tenants_at_once_never_collide_and_release_returns_all(restore_fleet_after, nb, lab_env):
    # Pools sized exactly for 20 tenants x 2 networks (and an L3VNI VLAN each), so racers are refused often
    # and must retry.
    pool = make_pool(nb, "race", (2000, 2000 + 3 * RACERS - 1), f"60001-{60000 + RACERS}",
                     f"160001-{160000 + 2 * RACERS}", f"0x7000-0x{0x7000 + RACERS - 1:04x}", "10.210.0.0/18")
    tenants = make_tenants(nb, [f"race{i:02d}" for i in range(RACERS)])

    def allocate(tenant):
        client = NetBox(lab_env["NETBOX_URL"], lab_env["NETBOX_TOKEN"])
        return tn.present(client, tenant, pool, 2)["allocation"]

    with ThreadPoolExecutor(RACERS) as ex:
        allocs = list(ex.map(allocate, tenants))
    for tenant, alloc in zip(tenants, allocs, strict=True):
        check_allocation(alloc, tenant, ["net1", "net2"], asn=65001, container="10.210.0.0/18")
    vlans = [v for a in allocs for v in a["vlans"]]
    for values in ([a["l3vni"] for a in allocs], [a["ib_pkey"] for a in allocs],
                   [v["vid"] for v in vlans] + [a["l3vni_vid"] for a in allocs],
                   [v["l2vni"] for v in vlans], [v["prefix"] for v in vlans]):
        assert len(set(values)) == len(values), sorted(values)
    free = tn.free_values(nb, tn.load_pool(nb, pool))
    assert all(not f["free"] for f in free.values()), "exactly sized pools are now full"
    for tenant, alloc in zip(tenants, allocs, strict=True):  # what each run returned is what NetBox holds
        again = tn.present(nb, tenant, pool, 2)
        assert {k: again[k] for k in ("changed", "allocation", "diff")} == {
            "changed": False, "allocation": alloc, "diff": {"before": alloc, "after": alloc}}

    # Release them all at once: every value goes back.
    with ThreadPoolExecutor(RACERS) as ex:
        list(ex.map(lambda t: tn.absent(NetBox(lab_env["NETBOX_URL"], lab_env["NETBOX_TOKEN"]), t, pool), tenants))
    free = tn.free_values(nb, tn.load_pool(nb, pool))
    assert {k: (len(f["free"]), f["in_use"]) for k, f in free.items()} == {
        "vid": (3 * RACERS, 0), "l2vni": (2 * RACERS, 0), "l3vni": (RACERS, 0), "ib_pkey": (RACERS, 0)}
    assert nb.list("ipam/prefixes", within="10.210.0.0/18") == []


@pytest.mark.netbox
def test_racing_runs_for_one_tenant_converge(restore_fleet_after, nb, lab_env):
    make_tenants(nb, ["samerace"])

    def allocate(_):
        client = NetBox(lab_env["NETBOX_URL"], lab_env["NETBOX_TOKEN"])
        return tn.present(client, "samerace", "tenant-fabric", [{"name": "a"}, {"name": "b"}])["allocation"]

    with ThreadPoolExecutor(6) as ex:
        allocs = list(ex.map(allocate, range(6)))
    final = tn.present(nb, "samerace", "tenant-fabric", [{"name": "a"}, {"name": "b"}])
    assert not final["changed"]
    assert all(a == final["allocation"] for a in allocs), allocs
    state = held(nb, "samerace")
    assert len(state["vrfs"]) == 1 and len(state["vlans"]) == 3 and len(state["prefixes"]) == 4
    assert nb.list("ipam/route-targets", name=final["allocation"]["rd"]) != []
    tn.absent(nb, "samerace", "tenant-fabric")
    assert held(nb, "samerace") == {"vrfs": [], "vlans": [], "prefixes": [], "ib_pkey": None}


@pytest.mark.netbox
def test_exhausted_pool_names_it_writes_nothing_and_release_refills(restore_fleet_after, nb, tmp_path):
    pool = make_pool(nb, "tiny", (10, 12), "59000-59001", "190000-190001", "0x7100-0x7101", "10.220.0.0/23")
    make_tenants(nb, ["first", "second"])
    proc, first = run_task(tmp_path, {"tenant": "first", "pool": pool, "vlans": 2})
    assert proc.returncode == 0 and first["changed"], proc.stdout[-3000:]
    taken = [{v[k] for v in first["allocation"]["vlans"]} for k in ("vid", "l2vni", "prefix")]
    taken[0].add(first["allocation"]["l3vni_vid"])

    before = changes(nb)
    proc, refused = run_task(tmp_path, {"tenant": "second", "pool": pool, "vlans": 1})
    assert refused.get("failed"), refused
    for message in ("pool tiny: no free VLAN ID in 10-12 (3 in use)",
                    "pool tiny: no free L2VNI in 190000-190001 (2 in use)",
                    "pool tiny: no room for 1 /24 prefix(es) in 10.220.0.0/23 (0 free)"):
        assert message in refused["errors"], refused["errors"]
    assert changes(nb) == before, "a refused allocation writes nothing"

    proc, released = run_task(tmp_path, {"tenant": "first", "pool": pool, "state": "absent"})
    assert proc.returncode == 0 and released["changed"]
    proc, second = run_task(tmp_path, {"tenant": "second", "pool": pool, "vlans": 1})
    assert proc.returncode == 0 and second["changed"], second
    (vlan,) = second["allocation"]["vlans"]
    assert second["allocation"]["l3vni_vid"] in taken[0]
    assert all(vlan[k] in values for k, values in zip(("vid", "l2vni", "prefix"), taken, strict=True)), vlan


@pytest.mark.netbox
def test_bad_input_names_every_field_and_writes_nothing(lab_env, fleet, nb, tmp_path):
    before = changes(nb)
    _, out = run_task(tmp_path, {"tenant": "Not A Slug", "pool": "", "prefix_length": 40,
                                 "vlans": [{"name": "Bad Name"}, {"name": "x", "vid": 5}, {"name": "x"}]})
    assert out.get("failed")
    for field in ("tenant: expected", "pool: expected", "prefix_length: expected an integer within 8-30",
                  "vlans[0].name: expected", "vlans[1]: unknown key(s) vid", "vlans[2].name: network 'x' is listed"):
        assert any(e.startswith(field) for e in out["errors"]), (field, out["errors"])
    assert out["msg"].startswith("6 invalid option(s)")
    _, out = run_task(tmp_path, {"tenant": "nosuchtenant", "vlans": 1})
    assert out.get("failed") and "tenant: no tenant 'nosuchtenant' in NetBox" in out["msg"]
    _, out = run_task(tmp_path, {"tenant": "acme", "pool": "nosuchpool", "vlans": 1})
    assert out.get("failed") and "pool: no VLAN group with slug 'nosuchpool'" in out["msg"]
    assert changes(nb) == before


# -- pure logic --------------------------------------------------------------------------------------

@pytest.mark.parametrize("vlans, names", [(3, ["net1", "net2", "net3"]), ([{"name": "a"}, {"name": "b"}], ["a", "b"])])
def test_network_names(vlans, names):
    assert tn.network_names(vlans) == names


@pytest.mark.parametrize("params, errors", [
    ({"tenant": "acme", "pool": "tenant-fabric", "vlans": 2, "prefix_length": 24}, []),
    ({"tenant": "acme", "pool": "p", "vlans": 0, "prefix_length": 24}, ["vlans: expected 1-64 networks, got 0"]),
    ({"tenant": "acme", "pool": "p", "vlans": True, "prefix_length": 24}, ["vlans: expected a count"]),
    ({"tenant": "acme", "pool": "p", "vlans": [{"name": "a" * 33}], "prefix_length": 24},
     ["vlans[0].name: at most 32 characters, got 33"]),
    ({"tenant": "t" * 40, "pool": "p", "vlans": [{"name": "a" * 30}], "prefix_length": 24},
     ["vlans[0].name: the VLAN name"]),
    ({"tenant": "t" * 60, "pool": "p", "state": "absent", "prefix_length": 24},
     ["tenant: the L3VNI VLAN name"]),
    ({"tenant": "acme", "pool": "p", "vlans": ["l3vni"], "prefix_length": 24},
     ["vlans[0].name: 'l3vni' is reserved"]),
    ({"tenant": "acme", "pool": "p", "state": "absent", "prefix_length": 24}, []),
    ({"tenant": None, "pool": "p", "vlans": 1, "prefix_length": "24"},
     ["tenant: expected", "prefix_length: expected"]),
])
def test_validate(params, errors):
    found = tn.validate(params)
    assert len(found) == len(errors) and all(f.startswith(e) for f, e in zip(found, errors, strict=True)), found


def test_parse_range():
    assert tn._parse_range("100-200") == (100, 200)
    assert tn._parse_range("0x0100-0x7ffe", hexadecimal=True) == (0x100, 0x7FFE)
    assert tn._parse_range("200-100") is None and tn._parse_range(None) is None


@pytest.mark.parametrize("message, refused", [
    ('{"__all__": ["Custom field \'l2vni\' must have a unique value."]}', {"l2vni"}),
    ('{"__all__": ["VLAN with this Group and VLAN ID already exists."]}', {"vid"}),
    ('{"rd": ["VRF with this route distinguisher already exists."]}', {"l3vni"}),
    ('{"__all__": ["Custom field \'ib_pkey\' must have a unique value."]}', {"ib_pkey"}),
    ('{"name": ["This field is required."]}', set()),
    ('{"error": "duplicate key value violates unique constraint \\"ipam_vrf_rd_key\\"\\nDETAIL:  Key (rd)='
     '(65001:60018) already exists.", "exception": "IntegrityError"}', {"l3vni"}),
])
def test_refusals_name_the_value(message, refused):
    assert tn._refused(NetBoxError(f"NetBox refused POST (400): {message}", 400)) == refused
    assert tn._refused(NetBoxError(message, 503)) == set()


def test_claim_drops_refused_values_and_names_the_exhausted_pool():
    pool = {"slug": "p"}
    free = {"vid": {"free": {1, 2, 3}, "in_use": 0, "range": "1-3"}}
    tried = []

    def attempt(values):
        tried.append(values["vid"])
        if len(tried) < 3:
            raise NetBoxError("VLAN with this Group and VLAN ID already exists.", 400)
        return values["vid"]

    assert tn._claim(pool, free, ("vid",), attempt) == tried[-1]
    assert len(set(tried)) == 3 and free["vid"]["free"] == set() and free["vid"]["in_use"] == 2
    with pytest.raises(tn.TenantNetworkError, match=r"pool p: no free VLAN ID in 1-3 \(2 in use\)"):
        tn._claim(pool, free, ("vid",), attempt)


# (tenant, l3vni, l3vni VID, pkey, [(network, vid, l2vni, prefix)]): what NetBox holds for the fabric fixture's
# tenants (tests/fixtures/fabric/inputs.yml; its attachments name these networks).
HELD = [("acme", 50001, 3001, "0x0101", [("web", 100, 100100, "10.200.0.0/24"), ("db", 101, 100101, "10.200.1.0/24")]),
        ("globex", 50002, 3002, "0x0102", [("compute", 200, 100200, "10.200.2.0/24")]),
        ("initech", 50003, 3003, "0x0103", [("lab", 300, 100300, "10.200.0.0/24")])]


def netbox_state(n: int, slug: str, l3vni: int, l3vni_vid: int, pkey: str, networks: list) -> dict:
    """A tenant's objects as NetBox's API returns them (the fields allocation() reads)."""
    rt = [{"id": n, "name": f"65000:{l3vni}"}]
    vrf = {"id": n, "name": tn.vrf_name(slug), "rd": f"65000:{l3vni}", "custom_fields": {"l3vni": l3vni},
           "import_targets": rt, "export_targets": rt}
    vlans = [{"id": 100 * n + i, "name": f"{slug}-{name}", "vid": vid, "custom_fields": {"l2vni": l2vni}}
             for i, (name, vid, l2vni, _prefix) in enumerate(networks)]
    vlans.append({"id": 100 * n + 99, "name": tn.l3vni_vlan_name(slug), "vid": l3vni_vid,
                  "custom_fields": {"l2vni": None}})
    prefixes = [{"id": 1000 * n + 2 * i + k, "prefix": prefix, "vlan": {"id": 100 * n + i},
                 "vrf": {"id": n} if k else None} for i, (*_, prefix) in enumerate(networks) for k in (0, 1)]
    return {"tenant": {"id": n, "slug": slug, "custom_fields": {"ib_pkey": pkey}}, "vrfs": [vrf], "vlans": vlans,
            "prefixes": prefixes}


def test_allocation_is_a_fabric_config_tenant_and_renders_on_sonic():
    """The allocator's result goes into the fabric config's input unchanged: it validates against
    fabric_schema.INPUT's tenant item, and with the fixture fabric on SONiC (which needs l3vni_vid) builds and
    renders config that passes the structured config's checks."""
    pool = {"slug": "tenant-fabric", "asn": 65000}
    allocs = [tn.allocation(pool, netbox_state(n, *held), [name for name, *_ in held[4]])
              for n, held in enumerate(HELD, 1)]
    assert allocs[0] == {"tenant": "acme", "vrf": "vrf50001", "rd": "65000:50001",
                         "route_targets": {"import": ["65000:50001"], "export": ["65000:50001"]},
                         "l3vni": 50001, "l3vni_vid": 3001, "ib_pkey": "0x0101",
                         "vlans": [{"name": "web", "vid": 100, "l2vni": 100100, "prefix": "10.200.0.0/24",
                                    "gateway": "10.200.0.1"},
                                   {"name": "db", "vid": 101, "l2vni": 100101, "prefix": "10.200.1.0/24",
                                    "gateway": "10.200.1.1"}]}
    for alloc in allocs:
        assert fabric_schema.errors(alloc, fabric_schema.TENANT) == [], alloc
    inputs = yaml.safe_load((Path(__file__).resolve().parent / "fixtures" / "fabric" / "inputs.yml").read_text())
    for switch in inputs["fabric"]["switches"].values():
        switch["platform"] = "sonic"
        switch["uplinks"][0]["interface"] = "Ethernet0"
    for n, attachment in enumerate(inputs["attachments"]):
        attachment["interface"] = f"Ethernet{4 * (n + 1)}"
    inputs["tenants"] = allocs
    assert fabric_config.validate_inputs(inputs) == []
    config = fabric_config.build(inputs)
    assert fabric_config.validate(config) == []
    assert [(v["name"], v["l3vni_vlan"]) for v in config["leaf2"]["vrfs"]] == [
        ("vrf50001", 3001), ("vrf50002", 3002), ("vrf50003", 3003)]
    assert "Vrf-vrf50003" in fabric_render.render_all(config)["leaf2"]["config_db.json"]

    # Without the L3VNI VLAN (not yet allocated) the allocation is incomplete, and the fabric config refuses it.
    state = netbox_state(1, *HELD[0])
    state["vlans"] = [v for v in state["vlans"] if v["name"] != "acme-l3vni"]
    incomplete = tn.allocation(pool, state, ["web", "db"])
    assert incomplete["l3vni_vid"] is None
    assert fabric_schema.errors(incomplete, fabric_schema.TENANT) == ["l3vni_vid: None is not of type 'integer'"]


def test_check_mode_allocation_is_a_fabric_config_tenant():
    """What check mode reports (the lowest free values) has the same shape; the L3VNI VLAN takes the VID after
    the networks'."""
    pool = {"slug": "tenant-fabric", "asn": 65000}
    state = {"tenant": {"id": 1, "slug": "acme", "custom_fields": {"ib_pkey": None}}, "vrfs": [], "vlans": [],
             "prefixes": []}
    plan = {"missing_vlans": ["a", "b"], "missing_l3vni_vlan": True, "first_prefixes": ["10.200.0.0/24",
                                                                                        "10.200.1.0/24"],
            "free": {"l3vni": {"free": {50002, 50001}}, "vid": {"free": {102, 100, 101, 103}},
                     "l2vni": {"free": {100101, 100100}}, "ib_pkey": {"free": {0x100}}}}
    alloc = tn._planned(pool, state, plan, ["a", "b"], 24)
    assert fabric_schema.errors(alloc, fabric_schema.TENANT) == []
    assert (alloc["vrf"], alloc["l3vni"], alloc["l3vni_vid"], alloc["ib_pkey"]) == ("vrf50001", 50001, 102, "0x0100")
    assert [(v["vid"], v["gateway"]) for v in alloc["vlans"]] == [(100, "10.200.0.1"), (101, "10.200.1.1")]


def test_a_run_that_lost_a_same_tenant_race_is_told_apart():
    """Its adopted VRF deleted by the winner, NetBox refuses the filter on it: present() starts again."""
    lost = 'NetBox refused GET /api/ipam/prefixes/ (400): {"vrf_id": ["Select a valid choice. 2 is not one of the ' \
           'available choices."]}'
    assert tn._lost_race(NetBoxError(lost, 400))
    assert not tn._lost_race(NetBoxError('NetBox refused POST /api/ipam/vlans/ (400): {"vid": ["required"]}', 400))
    assert not tn._lost_race(NetBoxError(lost, 500))
