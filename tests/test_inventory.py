"""The gpucloud_netbox inventory plugin against the real NetBox and the demo fleet."""

import json
import re
from collections import Counter

import pytest

from conftest import ansible_inventory


def hosts_of(data) -> set[str]:
    return set(data["_meta"]["hostvars"])


def group_hosts(data, group) -> set[str]:
    return set(data.get(group, {}).get("hosts", []))


def test_hosts_groups_and_hostvars(fleet):
    proc, data = ansible_inventory()
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == {s.name for s in fleet.servers}
    server = fleet.servers[0]
    hv = data["_meta"]["hostvars"][server.name]
    assert hv["ansible_host"] == server.mgmt_ip.split("/")[0]
    assert hv["bmc_address"] == server.bmc_ip.split("/")[0]
    assert (hv["tenant"], hv["site"], hv["rack"]) == (server.tenant, server.site, server.rack)
    assert hv["location"] == server.row
    gpu = (hv["gpu_vendor"], hv["gpu_model"], hv["gpu_count"], hv["gpu_memory_gb"])
    assert gpu == ("NVIDIA", "H100-SXM5-80GB", 8, 80)
    assert hv["hourly_cost"] == 24.0
    assert hv["nvlink_domain"] == server.nvlink_domain
    assert (hv["leaf_switch"], hv["leaf_port"]) == (server.leaf, server.leaf_port)
    assert (hv["ib_leaf_switch"], hv["ib_leaf_port"]) == (server.ib_leaf, server.ib_port)
    assert hv["ib_port_guids"] == [server.ib_guid]
    ifaces = {i["name"]: i for i in hv["interfaces"]}
    assert set(ifaces) == {"bmc", "mgmt0", "eth0", "ib0"}
    assert ifaces["bmc"]["ip_addresses"] == [server.bmc_ip] and ifaces["bmc"]["mgmt_only"]
    assert ifaces["eth0"]["connected_to"] == {"device": server.leaf, "interface": server.leaf_port}
    # Only a reference to the BMC credential travels, never a secret field.
    assert re.fullmatch(r"(vault|env):[A-Za-z0-9_./:-]+", hv["bmc_credential_ref"])
    assert not [k for k in hv if "password" in k or "secret" in k]


def test_constructed_compose_keyed_groups_and_groups(fleet, tmp_path):
    inv = tmp_path / "constructed.gpucloud_netbox.yml"
    inv.write_text(
        "plugin: gpucloud_netbox\ninterfaces: false\n"
        "compose:\n  gpu_total_memory_gb: gpu_count * gpu_memory_gb\n"
        "keyed_groups:\n  - key: gpu_count | string\n    prefix: gpus\n"
        "groups:\n  big_memory: gpu_memory_gb >= 180\n")
    proc, data = ansible_inventory(inventory=inv)
    assert proc.returncode == 0, proc.stderr
    server = fleet.servers[0]
    assert data["_meta"]["hostvars"][server.name]["gpu_total_memory_gb"] == 640
    assert server.name in group_hosts(data, "gpus_8")
    big = {s.name for s in fleet.servers if s.device_type in ("hgx-b200-8gpu", "mi300x-8gpu", "gb200-nvl72-tray")}
    assert group_hosts(data, "big_memory") == big


@pytest.mark.parametrize(("fact", "group_of"), [
    ("tenant", lambda s: s.tenant and f"tenant_{s.tenant}"),
    ("site", lambda s: f"site_{s.site}"),
    ("rack", lambda s: "rack_" + s.rack.replace("-", "_")),
    ("location", lambda s: "location_" + s.row.replace("-", "_")),
    ("nvlink_domain", lambda s: "nvlink_domain_" + s.nvlink_domain.replace("-", "_")),
    ("leaf_switch", lambda s: "leaf_switch_" + s.leaf.replace("-", "_")),
    ("role", lambda s: "role_gpu_server"),
])
def test_groups(fleet, fact, group_of):
    _, data = ansible_inventory()
    expected: dict[str, set] = {}
    for s in fleet.servers:
        if group_of(s):
            expected.setdefault(group_of(s), set()).add(s.name)
    for group, members in expected.items():
        assert group_hosts(data, group) == members, group


def test_groups_by_gpu_vendor_and_model(fleet):
    _, data = ansible_inventory()
    vendors = Counter({"hgx": "nvidia", "gb2": "nvidia", "mi3": "amd", "gau": "intel"}[s.device_type[:3]]
                      for s in fleet.servers)
    for vendor, count in vendors.items():
        assert len(group_hosts(data, f"gpu_vendor_{vendor}")) == count
    assert len(group_hosts(data, "gpu_model_mi300x")) == sum(s.device_type == "mi300x-8gpu" for s in fleet.servers)


@pytest.mark.parametrize("tenant", ["acme", "globex", "initech"])
def test_tenant_scope_excludes_every_other_device(fleet, tenant):
    proc, data = ansible_inventory(tenant=tenant)
    assert proc.returncode == 0, proc.stderr
    own = {s.name for s in fleet.servers if s.tenant == tenant}
    assert own and hosts_of(data) == own
    assert {hv["tenant"] for hv in data["_meta"]["hostvars"].values()} == {tenant}
    others = {s.name for s in fleet.servers if s.tenant != tenant}
    assert not others & set(json.dumps(data).split('"')), "another tenant's device name leaked"
    tenant_groups = {g for g in data if g.startswith("tenant_")}
    assert tenant_groups == {f"tenant_{tenant}"}


ERRORS = [
    ("unreachable", {"NETBOX_URL": "http://127.0.0.1:9"}, "is unreachable"),
    ("wrong token", {"NETBOX_TOKEN": "nbt_bogus.secret"}, "rejected the API token"),
    ("no token", {"NETBOX_TOKEN": ""}, "no NetBox API token given"),
    ("unknown tenant", {"GPUCLOUD_TENANT": "no-such-tenant"}, "no-such-tenant"),
    ("not netbox", {"NETBOX_URL": "http://127.0.0.1:56379"}, "NetBox"),
]


@pytest.mark.parametrize(("env", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_one_clear_line(fleet, env, message):
    proc, _ = ansible_inventory(env=env, tenant=env.get("GPUCLOUD_TENANT"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "gpucloud_netbox:" in line]
    assert lines and message in lines[0], proc.stderr


def test_bad_filter_is_named(fleet, tmp_path):
    inv = tmp_path / "bad.gpucloud_netbox.yml"
    inv.write_text("plugin: gpucloud_netbox\nfilters: {sitee: {slug: {exact: dc1}}}\n")
    proc, _ = ansible_inventory(inventory=inv)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unknown field 'sitee'" in proc.stderr


def test_filters_narrow_the_inventory(fleet, tmp_path):
    inv = tmp_path / "dc2.gpucloud_netbox.yml"
    inv.write_text("plugin: gpucloud_netbox\nfilters: {site: {slug: {in_list: [dc2]}}}\ninterfaces: false\n")
    proc, data = ansible_inventory(inventory=inv)
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == {s.name for s in fleet.servers if s.site == "dc2"}


def test_warm_run_answers_from_cache_until_netbox_changes(fleet, nb, tmp_path, restore_fleet_after):
    inv = tmp_path / "cached.gpucloud_netbox.yml"
    cache_dir = tmp_path / "cache"
    inv.write_text(f"plugin: gpucloud_netbox\ncache: true\ncache_plugin: ansible.builtin.jsonfile\n"
                   f"cache_connection: {cache_dir}\n")
    proc, _ = ansible_inventory(inventory=inv)
    assert proc.returncode == 0, proc.stderr
    (cache_file,) = cache_dir.iterdir()
    # Plant a marker in the cache: a warm run that shows it answered from the cache.
    envelope = json.loads(cache_file.read_text())  # the jsonfile cache wraps its payload as a string
    cached = json.loads(envelope["__payload__"])
    cached["hosts"]["planted-from-cache"] = {"tenant": None}
    cache_file.write_text(json.dumps({**envelope, "__payload__": json.dumps(cached)}))
    _, warm = ansible_inventory(inventory=inv)
    assert "planted-from-cache" in hosts_of(warm)
    # Any change in NetBox invalidates the cache.
    server = fleet.servers[0]
    dev = nb.list("dcim/devices", name=server.name, fields="id")[0]
    nb.update("dcim/devices", [{"id": dev["id"], "custom_fields": {"nvlink_domain": "moved"}}])
    _, fresh = ansible_inventory(inventory=inv)
    assert "planted-from-cache" not in hosts_of(fresh)
    assert fresh["_meta"]["hostvars"][server.name]["nvlink_domain"] == "moved"


@pytest.mark.parametrize("tenant", [None, "globex"])
def test_plugin_export_and_graphql_paths_agree(fleet, nb, tenant):
    """The gpucloud NetBox plugin's export and the GraphQL fallback yield identical hosts."""
    from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_inventory as ni

    query = ni.InventoryQuery(tenant=tenant, roles=["gpu-server"])
    via_export = ni.build_hosts(ni._from_export(nb.get(ni.EXPORT, role=query.roles, tenant=tenant or "")))
    via_graphql = ni.build_hosts(ni.fetch_graphql(nb, query))
    assert via_export == via_graphql
    assert len(via_export) == sum(1 for s in fleet.servers if tenant in (None, s.tenant))


def test_platform_groups_follow_netbox(fleet, nb, restore_fleet_after):
    server = fleet.servers[0]
    dev = nb.list("dcim/devices", name=server.name, fields="id")[0]
    platform = nb.list("dcim/platforms", slug="debian-12", fields="id")[0]
    nb.update("dcim/devices", [{"id": dev["id"], "platform": platform["id"]}])
    proc, data = ansible_inventory(tenant=server.tenant)
    assert proc.returncode == 0, proc.stderr
    assert group_hosts(data, "platform_debian_12") == {server.name}
    assert data["_meta"]["hostvars"][server.name]["platform"] == "debian-12"


def test_netbox_openapi_schema_generates_with_the_plugin_and_describes_the_export(nb):
    """The plugin's export is not a model view; NetBox's whole /api/schema/ failed (500) before it was described."""
    schema = nb.get("schema", format="json")
    assert schema["openapi"].startswith("3.")
    export = schema["paths"]["/api/plugins/gpucloud/inventory/"]["get"]
    assert {p["name"] for p in export["parameters"]} >= {"role", "tenant", "interfaces"}
    shape = export["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][shape]["properties"]) == {
        "devices", "device_types", "interfaces", "ip_addresses", "far_ends"}
