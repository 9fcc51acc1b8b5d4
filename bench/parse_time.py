"""Time an inventory plugin in-process: N parses of one inventory source, one JSON line out.

Run by bench/inventory.py under each contender's own interpreter, so neither plugin pays for
the other's imports, and process start-up is measured separately from the plugin's own work.
"""

import json
import sys
import time

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader


def main(source: str, runs: int) -> None:
    init_plugin_loader()  # as the ansible CLIs do: collections on collections_path become importable
    times, hosts, groups, ifaces, ips = [], 0, 0, 0, 0
    for _ in range(runs):
        started = time.perf_counter()
        inventory = InventoryManager(loader=DataLoader(), sources=[source])
        times.append(time.perf_counter() - started)
        hosts = len(inventory.hosts)
        groups = len(inventory.groups)
        all_vars = [h.get_vars() for h in inventory.hosts.values()]
        ifaces = sum(len(v.get("interfaces", [])) for v in all_vars)
        ips = sum(len(i.get("ip_addresses", [])) for v in all_vars for i in v.get("interfaces", []))
    print(json.dumps({"times": times, "hosts": hosts, "groups": groups, "interfaces": ifaces, "ips": ips}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
