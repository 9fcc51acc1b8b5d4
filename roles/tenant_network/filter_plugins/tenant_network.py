# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The NetBox journal text of a tenant's allocation change: what it holds now, or what it gave back."""


def tenant_network_journal(result: dict, state: str) -> str:
    if state == "absent":
        released = result.get("released") or {}

        def listed(key):
            return ", ".join(str(v) for v in released.get(key) or []) or "-"
        return (f"gpucloud released the tenant's networks: VRF {listed('vrfs')}, VLANs {listed('vlans')}, "
                f"prefixes {listed('prefixes')}, IB P_Key {released.get('ib_pkey') or '-'}")
    alloc = result.get("allocation") or {}
    lines = [f"gpucloud allocated the tenant's networks: VRF {alloc.get('vrf')} (L3VNI {alloc.get('l3vni')}, "
             f"RD {alloc.get('rd')}), IB P_Key {alloc.get('ib_pkey')}", ""]
    lines += [f"- {v['name']}: VLAN {v['vid']}, L2VNI {v['l2vni']}, {v['prefix']} (gateway {v['gateway']})"
              for v in alloc.get("vlans") or []]
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {"tenant_network_journal": tenant_network_journal}
