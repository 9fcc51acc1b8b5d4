"""Demo step 9: tenant networks. acme and globex get a VRF, a VLAN/L2VNI with a prefix and an InfiniBand P_Key
from the NetBox pools (playbooks/tenant_network.yml); site dc1's leaves and spines, cabled in the fabric lab as
NetBox says (Linux namespaces running FRR BGP EVPN and ifupdown2, lab/fabric_lab.py), are configured by the same
playbook; pings prove that acme's servers reach each other across leaves and never globex's. The same tenants
are rendered for SONiC and Arista EOS too, validated offline.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_config, fabric_inputs, netbox_api
from lab.fabric_lab import FabricLab, attachment_servers, lab_root, probe
from lab.proc import recap_summary
from lab.settings import Settings

SITE = "dc1"
TENANTS = ("acme", "globex")
CONVERGE_TIMEOUT = 60


def _playbook(s: Settings, env: dict, inventory: str, tenant: str, backend: str, *args: str) -> str:
    extra = {"tenant_network_tenant": tenant, "tenant_network_site": SITE, "tenant_network_vrf_backend": backend}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory,
                           "playbooks/tenant_network.yml", "-e", json.dumps(extra), *args], cwd=s.repo,
                          env={**os.environ, **env, "ANSIBLE_FORCE_COLOR": "0"}, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"tenant_network.yml failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def _controller_inventory(s: Settings) -> str:
    path = s.state / "controller-inventory.yml"
    path.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                    "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n")
    return str(path)


def _pairs(servers: list[dict], targets: list[dict]) -> list[tuple[str, str]]:
    return [(s["name"], t["address"].split("/")[0]) for s in servers for t in targets if s is not t]


def _with_idle_ports(servers: list[dict], fleet) -> list[dict]:
    """Every server port of the site exists, as on a real switch: a later tenant's nodes (a cluster's network
    stage in step 10) find their leaf port; only the tenants' attached servers get addresses."""
    used = {(srv["switch"], srv["interface"]) for srv in servers}
    return servers + [{"name": f"idle-{x.name}", "switch": x.leaf, "interface": x.leaf_port, "tenant": None}
                      for x in fleet.servers if x.site == SITE and (x.leaf, x.leaf_port) not in used]


def tenant_networks(s: Settings, env: dict, fleet) -> None:
    backend = probe()
    print(f"== 9. tenant networks: {' and '.join(TENANTS)} on site {SITE} (VXLAN/EVPN leaves: Linux namespaces "
          f"with FRR and ifupdown2, VRF backend {backend})")
    controller = _controller_inventory(s)
    for tenant in TENANTS:
        _playbook(s, env, controller, tenant, backend, "--limit", "localhost")
    nb = netbox_api.NetBox(env["NETBOX_URL"], env["NETBOX_TOKEN"])
    inputs = fabric_inputs.read(nb, site=SITE, vrf_backend=backend)["inputs"]
    for tenant in inputs["tenants"]:
        if tenant["tenant"] in TENANTS:
            vlans = ", ".join(f"{v['name']} VLAN {v['vid']} L2VNI {v['l2vni']} {v['prefix']}" for v in tenant["vlans"])
            print(f"  {tenant['tenant']}: {tenant['vrf']} L3VNI {tenant['l3vni']} RD {tenant['rd']}, {vlans}, "
                  f"IB P_Key {tenant['ib_pkey']}")
    lab = FabricLab(lab_root(s))
    roles = {n: "spine" if n.startswith("spine") else "leaf" for n in inputs["fabric"]["switches"]}
    t0 = time.monotonic()
    servers = attachment_servers(inputs)
    lab.up(inputs, servers=_with_idle_ports(servers, fleet), roles=roles, backend=backend)
    print(f"  fabric lab: {len(roles)} switches, {len(servers)} tenant server ports, up in "
          f"{time.monotonic() - t0:.1f}s")
    t0 = time.monotonic()
    first = recap_summary(_playbook(s, env, str(lab.inventory), TENANTS[0], backend), "hosts")
    t1 = time.monotonic()
    again = recap_summary(_playbook(s, env, str(lab.inventory), TENANTS[0], backend), "hosts")
    print(f"  tenant_network.yml: {first} in {t1 - t0:.1f}s; again: {again} in {time.monotonic() - t1:.1f}s")
    lab.wait_converged(fabric_config.switch_files(inputs), timeout=CONVERGE_TIMEOUT)
    by_tenant = {t: [srv for srv in servers if srv["tenant"] == t] for t in TENANTS}
    same = _pairs(by_tenant["acme"], by_tenant["acme"])
    cross = _pairs(by_tenant["globex"], by_tenant["acme"])
    print(f"  pings: acme to acme across {len({x['switch'] for x in by_tenant['acme']})} leaves "
          f"{len(lab.reachable(same))}/{len(same)} answered; globex to acme {len(lab.reachable(cross))}/{len(cross)}")
    conf = (lab.root / "opensm" / "partitions.conf").read_text()
    tenants = [line[len("# tenant "):] for line in conf.splitlines() if line.startswith("# tenant ")]
    print(f"  InfiniBand: OpenSM partitions.conf and the UFM payload in {lab.root / 'opensm'}, one partition per "
          f"tenant ({', '.join(tenants)}), members by port GUID")
    for platform in ("sonic", "eos"):
        rendered = fabric_config.switch_files(inputs, platform=platform)
        print(f"  {platform}: {len(rendered)} switch configs rendered and validated offline")
