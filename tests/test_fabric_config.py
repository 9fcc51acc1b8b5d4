"""Fabric structured config and its renderers, data-driven from tests/fixtures/fabric/inputs.yml.

Golden files: tests/fixtures/fabric/<variant>/<switch>/<file>; regenerate with UPDATE_GOLDEN=1 and review the diff.
Linux output is checked with the real tools: ifupdown2's parser (`ifquery -o json -i`, attributes checked
against `ifquery -s`) and FRR's own parser (`vtysh -C -f`, no daemons needed).
"""

import copy
import difflib
import json
import os
import random
import re
import shutil
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
import yaml

import lab  # noqa: F401  (puts the collection on sys.path)
from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config, fabric_render

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fabric"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SYSTEM_PYTHON = "/usr/bin/python3"
IFQUERY = "/usr/sbin/ifquery"
HAVE_IFUPDOWN2 = Path(IFQUERY).exists() and Path(SYSTEM_PYTHON).exists()
HAVE_VTYSH = shutil.which("vtysh") is not None
# (variant, platform, vrf backend): the same tenants rendered for every platform.
VARIANTS = [("linux", "linux", "device"), ("linux-netns", "linux", "netns"), ("sonic", "sonic", "device"),
            ("eos", "eos", "device")]


def inputs_for(platform: str = "linux", backend: str = "device") -> dict:
    """The fixture fabric on `platform`: swpN ports become EthernetN (EOS) or Ethernet4N (SONiC)."""
    data = yaml.safe_load((FIXTURES / "inputs.yml").read_text())
    rename = {"linux": lambda n: f"swp{n}", "eos": lambda n: f"Ethernet{n}", "sonic": lambda n: f"Ethernet{4 * n}"}
    port = lambda name: rename[platform](int(name.removeprefix("swp")))  # noqa: E731
    data["fabric"]["vrf_backend"] = backend
    for switch in data["fabric"]["switches"].values():
        switch["platform"] = platform
        for uplink in switch["uplinks"]:
            uplink["interface"] = port(uplink["interface"])
    for attachment in data["attachments"]:
        attachment["interface"] = port(attachment["interface"])
    return data


def rendered(inputs: dict) -> dict[str, dict[str, str]]:
    return fabric_render.render_all(fabric_config.build(inputs))


def check_golden(path: Path, text: str):
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), "".join(difflib.unified_diff(
        path.read_text().splitlines(True), text.splitlines(True), str(path), "rendered"))


@cache
def ifupdown2_attributes() -> frozenset:
    """Every attribute some ifupdown2 module understands, from its own syntax help."""
    out = subprocess.run([SYSTEM_PYTHON, IFQUERY, "-s"], capture_output=True, text=True, check=True).stdout
    return frozenset(re.findall(r"^  ([a-z0-9-]+)$", out, re.MULTILINE))


def linux_errors(files: dict[str, str], workdir: Path) -> list[str]:
    found = []
    interfaces, frr = workdir / "interfaces", workdir / "frr.conf"
    interfaces.write_text(files["interfaces"])
    frr.write_text(files["frr.conf"])
    if HAVE_IFUPDOWN2:
        run = subprocess.run([SYSTEM_PYTHON, IFQUERY, "-o", "json", "-a", "-i", str(interfaces)],
                             capture_output=True, text=True)
        if run.returncode:
            found.append(f"interfaces: ifquery rc {run.returncode}: {run.stderr.strip()}")
        else:
            stanzas = json.loads(run.stdout)
            expected = len(re.findall(r"^iface ", files["interfaces"], re.MULTILINE))
            if len(stanzas) != expected:
                found.append(f"interfaces: ifquery parsed {len(stanzas)} stanzas, the file has {expected}")
            found += [f"interfaces: {s['name']}: ifupdown2 knows no attribute {key!r}"
                      for s in stanzas for key in s["config"] if key not in ifupdown2_attributes()]
    if HAVE_VTYSH:
        run = subprocess.run(["vtysh", "-C", "-f", str(frr)], capture_output=True, text=True)
        if run.returncode:
            found.append(f"frr.conf: vtysh --dryrun rc {run.returncode}: {(run.stdout + run.stderr).strip()}")
    return found


def test_structured_config_matches_golden():
    config = fabric_config.build(inputs_for())
    assert fabric_config.validate(config) == []
    check_golden(FIXTURES / "structured.json", json.dumps(config, indent=2) + "\n")


def test_only_switches_with_a_tenants_ports_get_its_config():
    config = fabric_config.build(inputs_for())
    assert [v["name"] for v in config["leaf1"]["vrfs"]] == ["acme", "globex"]
    assert [v["name"] for v in config["leaf2"]["vrfs"]] == ["acme", "globex", "initech"]
    assert [v["vid"] for v in config["leaf2"]["vlans"]] == [100, 200, 300]  # acme's VLAN 101 has no port on leaf2
    assert config["leaf2"]["vlans"][1]["ports"] == ["swp2", "swp3"]


def test_input_order_does_not_change_the_output():
    inputs = inputs_for()
    expected = rendered(inputs)
    for seed in range(5):
        shuffled = copy.deepcopy(inputs)
        random.Random(seed).shuffle(shuffled["tenants"])
        random.Random(seed).shuffle(shuffled["attachments"])
        for tenant in shuffled["tenants"]:
            random.Random(seed).shuffle(tenant["vlans"])
        assert rendered(shuffled) == expected


@pytest.mark.parametrize(("variant", "platform", "backend"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_renderer_output_matches_golden(variant, platform, backend):
    for switch, files in rendered(inputs_for(platform, backend)).items():
        for name, text in files.items():
            check_golden(FIXTURES / variant / switch / name, text)


@pytest.mark.parametrize(("variant", "platform", "backend"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_renderer_output_is_valid(variant, platform, backend, tmp_path):
    if platform == "linux" and not (HAVE_IFUPDOWN2 and HAVE_VTYSH):
        pytest.skip("needs ifupdown2 and frr (vtysh) installed")
    for switch, files in rendered(inputs_for(platform, backend)).items():
        found = fabric_render.output_errors(platform, files)
        if platform == "linux":
            found += linux_errors(files, tmp_path)
        assert found == [], f"{variant} {switch}"


def test_netns_backend_adds_netns_lines_and_drops_kernel_vrfs():
    files = rendered(inputs_for("linux", "netns"))["leaf1"]
    assert "vrf acme\n netns /run/netns/acme\n vni 50001\nexit-vrf\n" in files["frr.conf"]
    assert "vrf-table" not in files["interfaces"] and "address 10.200" not in files["interfaces"]
    device = rendered(inputs_for("linux", "device"))["leaf1"]
    assert "netns" not in device["frr.conf"] and "vrf-table auto" in device["interfaces"]


def test_every_input_error_is_reported_at_once():
    inputs = inputs_for()
    inputs["fabric"]["switches"]["leaf1"]["asn"] = 0
    inputs["fabric"]["switches"]["leaf2"]["router_id"] = "10.255.0.1"
    inputs["fabric"]["switches"]["leaf2"]["platform"] = "junos"
    inputs["tenants"][0]["vlans"][1]["l2vni"] = 0
    inputs["tenants"][0]["vlans"][1]["gateway"] = "10.9.9.9"
    inputs["tenants"][1]["l3vni"] = 50001
    inputs["tenants"][2]["vlans"][0]["vid"] = 5000
    inputs["attachments"][1]["interface"] = "swp1"
    inputs["attachments"][2]["vlan"] = "nope"
    inputs["attachments"].append({"switch": "leaf9", "interface": "swp51", "tenant": "hooli", "vlan": 1})
    with pytest.raises(fabric_config.FabricConfigError) as caught:
        fabric_config.build(inputs)
    assert caught.value.errors == [
        "fabric.switches.leaf1.asn: 0 is less than the minimum of 1",
        "tenants[0].vlans[1].l2vni: 0 is less than the minimum of 1",
        "tenants[2].vlans[0].vid: 5000 is greater than the maximum of 4094",
        "fabric.switches.leaf2.platform: no renderer for 'junos' (known: eos, linux, sonic)",
        "fabric.switches.leaf2.router_id: router-id 10.255.0.1 is already used by fabric.switches.leaf1.router_id",
        "fabric.switches.leaf2.vtep_ip: VTEP address 10.255.0.1 is already used by fabric.switches.leaf1.vtep_ip",
        "tenants[0].vlans[1].gateway: 10.9.9.9 is not in prefix 10.200.1.0/24",
        "tenants[1].l3vni: VNI 50001 is already used by tenants[0].l3vni",
        "attachments[2].vlan: tenant globex has no VLAN 'nope'",
        "attachments[7].switch: unknown switch 'leaf9' (known: leaf1, leaf2)",
        "attachments[7].tenant: unknown tenant 'hooli'",
        "attachments[1]: port leaf1 swp1 is attached twice (first: attachments[0])",
    ]


def test_every_structured_config_error_is_reported_at_once():
    config = fabric_config.build(inputs_for())
    leaf = config["leaf2"]
    leaf["vlans"][2]["l2vni"] = 0
    leaf["vlans"][1]["vid"] = 100
    leaf["vrfs"][2]["l3vni"] = 100100
    leaf["access_ports"][2]["interface"] = "swp2"
    leaf["svis"][0]["ip_address"] = "10.200.0.0/24"
    leaf["svis"][1]["vrf"] = "hooli"
    assert set(fabric_config.validate(config)) == {
        "leaf2.vlans[2].l2vni: 0 is less than the minimum of 1",
        "leaf2.vlans[1].vid: VID 100 is already used by leaf2.vlans[0].vid",
        "leaf2.vrfs[2].l3vni: VNI 100100 is already used by leaf2.vlans[0].l2vni",
        "leaf2.access_ports[2].interface: interface swp2 is already used by leaf2.access_ports[1].interface",
        "leaf2.svis[1].vrf: unknown VRF 'hooli' on this switch",
        "leaf2.svis[0].ip_address: 10.200.0.0 is the network or broadcast address",
        "leaf2.access_ports[1].vlan: no VLAN 200 on this switch",
        "leaf2.access_ports[2].vlan: no VLAN 200 on this switch",
        "leaf2.svis[1].vlan: no VLAN 200 on this switch",
    }


def test_sonic_switch_needs_an_l3vni_vlan():
    inputs = inputs_for("sonic")
    del inputs["tenants"][1]["l3vni_vid"]
    with pytest.raises(fabric_config.FabricConfigError) as caught:
        fabric_config.build(inputs)
    assert caught.value.errors == [
        f"attachments[{i}]: tenant globex needs l3vni_vid on SONiC switch {sw} (SONiC maps an L3VNI through a VLAN)"
        for i, sw in ((2, "leaf1"), (4, "leaf2"), (5, "leaf2"))]


def test_output_checks_report_every_problem():
    eos = rendered(inputs_for("eos"))["leaf1"]["startup-config"]
    broken = eos.replace("vlan 100\n   name", "vlan 5000\n   name").replace("   vxlan udp-port", "  vxlan udp-port")
    broken = broken.replace("ip routing\n", "ip routing\nip bogus\n   nested under nothing\n")
    assert fabric_render.eos_errors({"startup-config": broken}) == [
        "startup-config:6: vid 5000 is outside 1..4094",
        "startup-config:20: 'ip bogus' is not allowed at the top level",
        "startup-config:21: 'nested under nothing' is indented under a command that takes no sub-commands",
        "startup-config:63: bad whitespace (indent with multiples of 3 spaces): '  vxlan udp-port 4789'",
    ]
    sonic = json.loads(rendered(inputs_for("sonic"))["leaf1"]["config_db.json"])
    sonic["VLAN"]["Vlan100"]["vlanid"] = 100
    sonic["VXLAN_TUNNEL_MAP"]["vtep|map_1_Vlan5000"] = {"vni": "1", "vlan": "Vlan5000"}
    del sonic["SAG"]
    errors = fabric_render.sonic_errors({"config_db.json": json.dumps(sonic)})
    assert [e.split(":")[0] for e in errors] == ["config_db.json", "config_db.json.VLAN.Vlan100.vlanid",
                                                 "config_db.json.VXLAN_TUNNEL_MAP",
                                                 "config_db.json.VXLAN_TUNNEL_MAP.vtep|map_1_Vlan5000.vlan"]
    assert "'SAG' is a required property" in errors[0]


@pytest.mark.skipif(not (HAVE_IFUPDOWN2 and HAVE_VTYSH), reason="needs ifupdown2 and frr (vtysh) installed")
def test_linux_checks_catch_what_the_tools_refuse(tmp_path):
    files = rendered(inputs_for())["leaf1"]
    files["interfaces"] = files["interfaces"].replace("bridge-stp off", "bridge-stpp off", 1)
    files["frr.conf"] = files["frr.conf"].replace("advertise-all-vni", "advertise-all-vnis")
    found = linux_errors(files, tmp_path)
    assert found[0] == "interfaces: brl3-50001: ifupdown2 knows no attribute 'bridge-stpp'"
    assert found[1].startswith("frr.conf: vtysh --dryrun rc 2") and "advertise-all-vnis" in found[1]


def tenant_tokens(tenant: dict, inputs: dict, switch: str) -> tuple[list[re.Pattern], list[re.Pattern]]:
    """(patterns only this tenant's config has on `switch`, patterns it may share: prefixes may repeat across
    tenants). Numbers are digit-bounded so VLAN 100 does not match VNI 100100."""
    numbers, shared = {tenant["l3vni"], tenant["l3vni_vid"]}, set()  # digit- and dot-bounded: not inside an IP
    for vlan in tenant["vlans"]:
        numbers |= {vlan["vid"], vlan["l2vni"]}
        shared |= {vlan["prefix"], f"{vlan['gateway']}/{vlan['prefix'].split('/')[1]}"}
    ports = {a["interface"] for a in inputs["attachments"] if a["tenant"] == tenant["tenant"] and a["switch"] == switch}
    own = ([re.compile(rf"(?<![0-9.]){n}(?![0-9.])") for n in numbers]
           + [re.compile(rf"[0-9]:{tenant['rd'].split(':')[1]}(?![0-9])")]  # the VRF's RD, router-id:N
           + [re.compile(re.escape(t)) for t in (tenant["vrf"], tenant["tenant"])]
           + [re.compile(rf"{re.escape(p)}(?![0-9])") for p in ports])
    return own, [re.compile(re.escape(t)) for t in shared]


STRUCTURAL = {"", "!", "exit", "exit-vrf", "exit-vni", "exit-address-family"}


def comparable(name: str, text: str) -> str:
    """JSON flattened to one "TABLE|key|field=value" line per value, so the diff sees entries, not commas."""
    if not name.endswith(".json"):
        return text
    flat = []
    for table, rows in json.loads(text).items():
        for key, row in rows.items():
            flat += [f"{table}|{key}|{field}={value}" for field, value in row.items()] or [f"{table}|{key}"]
    return "\n".join(sorted(flat)) + "\n"


def paths(text: str) -> Counter:
    """Each line with the lines it is nested under (by indentation), counted: order-free, so a repeated
    line ("!", "redistribute learned") is judged inside its own block."""
    found, stack = Counter(), []
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        found[(*(text for _indent, text in stack), line.strip())] += 1
        if line.strip():
            stack.append((indent, line.strip()))
    return found


def removed_lines_all_belong_to(before: str, after: str, tokens: tuple[list, list]) -> list[str]:
    """Problems: a line added or changed, a removed line that neither names the tenant nor sits in a block
    that does, or a kept line that still names it."""
    own, shared = tokens
    old, new = paths(before), paths(after)
    problems = [f"added {path}" for path in new - old]
    for path in old - new:
        if path[-1] not in STRUCTURAL and not any(t.search(part) for part in path for t in own + shared):
            problems.append(f"removed {path} does not belong to the tenant")
    problems += [f"kept {path} names the tenant" for path in new if any(t.search(path[-1]) for t in own)]
    return problems


@pytest.mark.parametrize(("variant", "platform", "backend"), VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("tenant", ["acme", "globex", "initech"])
def test_removing_a_tenant_removes_exactly_its_lines(variant, platform, backend, tenant):
    inputs = inputs_for(platform, backend)
    before = rendered(inputs)
    allocation = next(t for t in inputs["tenants"] if t["tenant"] == tenant)
    before_inputs = copy.deepcopy(inputs)
    inputs["tenants"].remove(allocation)
    inputs["attachments"] = [a for a in inputs["attachments"] if a["tenant"] != tenant]
    after = rendered(inputs)
    changed = False
    for switch in before:
        for name in before[switch]:
            problems = removed_lines_all_belong_to(comparable(name, before[switch][name]),
                                                   comparable(name, after[switch][name]),
                                                   tenant_tokens(allocation, before_inputs, switch))
            assert problems == [], f"{variant} {switch} {name}"
            changed |= before[switch][name] != after[switch][name]
    assert changed
