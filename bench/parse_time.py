"""Time an inventory plugin in-process: N parses of one inventory source, one JSON line out.

Run by bench/inventory.py under each contender's own interpreter, so neither plugin pays for
the other's imports, and process start-up is measured separately from the plugin's own work.
For gpucloud_netbox it also times the data path alone (NetBox fetch, or the change check and
cache read on a warm run), apart from Ansible's own work of adding hosts and variables.
"""

import json
import sys
import time

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader


def _time_data_path(samples: list) -> None:
    plugin = inventory_loader.get("gpucloud_netbox")
    if plugin is None:
        return
    cls = type(plugin)
    original = cls._hosts

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            samples.append(time.perf_counter() - started)

    cls._hosts = timed


def main(source: str, runs: int) -> None:
    init_plugin_loader()  # as the ansible CLIs do: collections on collections_path become importable
    data_path: list[float] = []
    _time_data_path(data_path)
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
    print(json.dumps({"times": times, "data_path": data_path, "hosts": hosts, "groups": groups,
                      "interfaces": ifaces, "ips": ips}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
