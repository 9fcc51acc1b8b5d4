"""playbooks/tenant_network.yml end to end: NetBox allocates, the leaves of site dc1 are configured, packets prove it.

The lab NetBox holds the seeded fleet (dc1: three leaves under two spines; acme servers on all three leaves,
globex servers on leaf-dc1-r01 beside acme's). Each tenant's networks are allocated from the NetBox pools, the
fabric lab is cabled from what gpucloud.infra.fabric_inputs reads back (switches, uplinks, the tenants' server
ports; each server gets a host of its tenant's prefix), then the whole playbook configures every switch over the
nsenter connection and writes the InfiniBand partitions. Releasing globex through the same playbook removes
exactly its config while acme keeps passing.
"""

import json
import os
from pathlib import Path

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config
from conftest import BIN, recaps, run
from lab.fabric_lab import FabricLab, attachment_servers, probe
from lab.settings import load

TOOLS = ["/usr/lib/frr/zebra", "/usr/lib/frr/frr-reload.py", "/usr/sbin/ifreload", "/usr/bin/vtysh", "/usr/bin/ping"]
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not all(Path(t).exists() for t in TOOLS),
                                reason="needs root, FRR (frr, frr-pythontools), ifupdown2 and iputils-ping")
SITE = "dc1"


class Site:
    def __init__(self, env: dict, lab: FabricLab, backend: str):
        self.env, self.lab, self.backend = env, lab, backend
        self.servers: dict[str, dict] = {}

    def playbook(self, tenant: str, *args: str, state: str = "present") -> dict:
        extra = {"tenant_network_tenant": tenant, "tenant_network_site": SITE, "tenant_network_state": state,
                 "tenant_network_vrf_backend": self.backend}
        proc = run([str(BIN / "ansible-playbook"), "-i", str(self.lab.inventory),
                    "playbooks/tenant_network.yml", "-e", json.dumps(extra), *args], env=self.env)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        return recaps(proc)

    def inputs(self) -> dict:
        from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_inputs, netbox_api
        nb = netbox_api.NetBox(self.env["NETBOX_URL"], self.env["NETBOX_TOKEN"])
        return fabric_inputs.read(nb, site=SITE, vrf_backend=self.backend)["inputs"]

    def up(self, inputs: dict) -> None:
        roles = {n: "spine" if n.startswith("spine") else "leaf" for n in inputs["fabric"]["switches"]}
        self.lab.up(inputs, roles=roles, backend=self.backend)
        self.servers = {s["name"]: s for s in attachment_servers(inputs)}

    def of(self, tenant: str) -> list[dict]:
        return [s for s in self.servers.values() if s["tenant"] == tenant]

    def wait_converged(self) -> None:
        """Until every stretched L2VNI has its remote VTEPs, for the switch configs NetBox gives now."""
        self.lab.wait_converged(fabric_config.switch_files(self.inputs()), timeout=60)


def _pairs(servers: list[dict], targets: list[dict]) -> list[tuple[str, str]]:
    return [(s["name"], t["address"].split("/")[0]) for s in servers for t in targets if s is not t]


@pytest.fixture(scope="module")
def site(lab_env, fleet):
    from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, tenant_network
    env = {**os.environ, **lab_env}
    nb = netbox_api.NetBox(env["NETBOX_URL"], env["NETBOX_TOKEN"])
    lab = FabricLab(load().state / "fabric-e2e")
    site = Site(env, lab, probe())
    # The servers' addresses come from the allocations, so these are made before the lab is cabled (the module's
    # own code; the playbook below allocates again and finds nothing to do).
    for tenant in ("acme", "globex"):
        tenant_network.present(nb, tenant, "tenant-fabric", 1)
    inputs = site.inputs()
    site.up(inputs)
    by_vlan = {(t["tenant"], v["vid"]): v["l2vni"] for t in inputs["tenants"] for v in t["vlans"]}
    for server in site.servers.values():
        server["l2vni"] = by_vlan[(server["tenant"], server["vlan"])]
    site.first_inputs = inputs
    yield site
    lab.down()
    for tenant in ("acme", "globex"):  # leave the pools as the other tests found them
        tenant_network.absent(nb, tenant, "tenant-fabric")


@pytest.fixture(scope="module")
def applied(site):
    check = site.playbook("acme", "--check")
    first = site.playbook("acme")
    site.wait_converged()
    return {"check": check, "first": first, "again": site.playbook("acme")}


def test_netbox_inputs_cover_both_tenants_servers(site):
    inputs = site.first_inputs
    tenants = {t["tenant"] for t in inputs["tenants"]}
    assert {"acme", "globex"} <= tenants
    acme_leaves = {a["switch"] for a in inputs["attachments"] if a["tenant"] == "acme"}
    assert len(acme_leaves) >= 2, acme_leaves
    assert any(s.startswith("spine") for s in inputs["fabric"]["switches"])


def test_check_then_apply_then_nothing_changes(applied):
    assert all(r["failed"] == 0 for r in applied["check"].values()), applied["check"]
    assert any(r["changed"] for name, r in applied["first"].items() if name.startswith("leaf")), applied["first"]
    assert all(r["changed"] == 0 for r in applied["again"].values()), applied["again"]


def test_same_tenant_reaches_across_leaves_and_others_do_not(site, applied):
    acme, globex = site.of("acme"), site.of("globex")
    acme_pairs = _pairs(acme, acme)
    assert len({s["switch"] for s in acme}) >= 2
    assert site.lab.reachable(acme_pairs) == set(acme_pairs)
    globex_pairs = _pairs(globex, globex)
    assert site.lab.reachable(globex_pairs) == set(globex_pairs)
    cross = _pairs(globex, acme) + _pairs(acme, globex)
    assert site.lab.reachable(cross) == set()


def test_tenants_cannot_reach_the_underlay(site, applied):
    underlay = {sw["router_id"] for sw in site.first_inputs["fabric"]["switches"].values()}
    underlay |= {u["ip_address"].split("/")[0] for sw in site.first_inputs["fabric"]["switches"].values()
                 for u in sw["uplinks"]}
    pairs = [(s["name"], ip) for s in site.servers.values() for ip in sorted(underlay)[:6]]
    assert site.lab.reachable(pairs) == set()


def test_ib_partitions_carry_each_tenants_pkey(site, applied):
    conf = (site.lab.root / "opensm" / "partitions.conf").read_text()
    for tenant in ("acme", "globex"):
        pkey = next(t["ib_pkey"] for t in site.first_inputs["tenants"] if t["tenant"] == tenant)
        assert f"=0x{int(pkey, 16):04x}" in conf.lower(), conf
    assert json.loads((site.lab.root / "opensm" / "ufm-pkeys.json").read_text())


def test_releasing_a_tenant_removes_exactly_it(site, applied):
    globex_vnis = {str(s["l2vni"]) for s in site.of("globex")}
    leaf = site.of("globex")[0]["switch"]
    before = {sw: site.lab.sw(sw, "cat", "/etc/network/interfaces").stdout for sw in site.lab.state()["switches"]}
    released = site.playbook("globex", state="absent")
    assert released["localhost"]["changed"] > 0 and released[leaf]["changed"] > 0, released
    links = {link["ifname"] for link in json.loads(site.lab.sw(leaf, "ip", "-j", "link", "show").stdout)}
    assert not {f"vni{v}" for v in globex_vnis} & links
    acme_vnis = {str(s["l2vni"]) for s in site.of("acme") if s["switch"] == leaf}
    assert {f"vni{v}" for v in acme_vnis} <= links
    running = site.lab.vtysh(leaf, "show running-config")
    assert all(f"vni {v}\n" not in running for v in globex_vnis) and all(f"vni {v}\n" in running for v in acme_vnis)
    after = {sw: site.lab.sw(sw, "cat", "/etc/network/interfaces").stdout for sw in before}
    for switch, text in before.items():
        kept = [line for line in text.splitlines() if "globex" not in line]
        assert all(line in after[switch].splitlines() for line in kept if line.startswith("auto vni")
                   and not any(v in line for v in globex_vnis)), switch
    site.wait_converged()
    acme_pairs = _pairs(site.of("acme"), site.of("acme"))
    assert site.lab.reachable(acme_pairs) == set(acme_pairs)
    assert site.lab.reachable(_pairs(site.of("globex"), site.of("globex"))) == set()
    conf = (site.lab.root / "opensm" / "partitions.conf").read_text()
    assert "globex" not in conf
