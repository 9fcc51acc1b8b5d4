# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: gpucloud_netbox
short_description: GPU fleet inventory from NetBox, fast and tenant-scoped
description:
  - Builds an inventory of GPU servers from NetBox with their GPU facts, topology (site, row,
    rack, NVLink domain, Ethernet and InfiniBand leaf), BMC and management addresses,
    interfaces and IP addresses.
  - Fetches in one request from gpucloud's NetBox plugin (netbox_plugin/) when NetBox has it,
    otherwise from GraphQL in parallel chunks, asking only for the fields the hosts carry.
  - With O(tenant) set, NetBox filters the devices and their components by that tenant, so no
    other tenant's object is fetched or shown.
  - With caching on, a warm run asks NetBox only for its newest change-log entry and answers
    from the cache when nothing has changed since.
  - Inventory files must be named C(*.gpucloud_netbox.yml) or C(gpucloud_netbox.yml) (or .yaml).
version_added: "0.1.0"
author: gpucloud contributors
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: Marks this file as a gpucloud_netbox inventory.
    required: true
    choices: [gpucloud_netbox]
  url:
    description: NetBox base URL.
    type: str
    env:
      - name: NETBOX_URL
  token:
    description: NetBox API token (v2 C(nbt_...) or v1). Read it from the environment; never commit it.
    type: str
    env:
      - name: NETBOX_TOKEN
  validate_certs:
    description: Verify NetBox's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each NetBox request.
    type: int
    default: 60
  tenant:
    description: Only this tenant's devices (tenant slug). Unset means every tenant's and unassigned devices.
    type: str
    env:
      - name: GPUCLOUD_TENANT
  device_roles:
    description: Device role slugs to include.
    type: list
    elements: str
    default: [gpu-server]
  filters:
    description:
      - Extra NetBox GraphQL C(DeviceFilter) conditions; they can only narrow the inventory.
      - "For example C({site: {slug: {in_list: [dc1]}}, status: {exact: STATUS_ACTIVE}})."
    type: dict
    default: {}
  interfaces:
    description: Fetch interfaces, their IP addresses and cable peers (leaf switch and port).
    type: bool
    default: true
  ansible_host_source:
    description: Which address becomes C(ansible_host).
    type: str
    default: mgmt_ip
    choices: [mgmt_ip, bmc_address, none]
  group_by:
    description: Facts to group hosts by; groups are named C(<fact>_<value>).
    type: list
    elements: str
    default: [tenant, role, site, location, rack, nvlink_domain, gpu_vendor, gpu_model, platform, leaf_switch]
  max_workers:
    description: Parallel requests to NetBox.
    type: int
    default: 6
"""

EXAMPLES = r"""
# inventory/acme.gpucloud_netbox.yml
plugin: gpucloud_netbox
tenant: acme
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: .state/inventory-cache
keyed_groups:
  - key: gpu_count
    prefix: gpus
compose:
  slurm_gres: "'gpu:' ~ gpu_model ~ ':' ~ gpu_count"
"""

import hashlib
import json
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

try:
    from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_inventory
except ImportError as exc:  # pragma: no cover - reported when the collection is not on collections_path
    raise ImportError("gpucloud_netbox needs the gpucloud.infra collection on collections_path "
                      "(see ansible.cfg in the gpucloud repository)") from exc

CACHE_FORMAT = 2  # 2: hosts carry project
_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def group_name(fact: str, value) -> str:
    return _GROUP_UNSAFE.sub("_", f"{fact}_{value}").lower()


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "gpucloud_netbox"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(
            ("gpucloud_netbox.yml", "gpucloud_netbox.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            hosts = self._hosts(path, cache)
        except netbox_api.NetBoxError as exc:
            raise AnsibleParserError(f"gpucloud_netbox: {exc}") from None
        self._populate(hosts)

    # -- data ----------------------------------------------------------------------------------
    def _query(self):
        return netbox_inventory.InventoryQuery(
            tenant=self.get_option("tenant") or None, roles=self.get_option("device_roles"),
            filters=self.get_option("filters"), interfaces=self.get_option("interfaces"))

    def _cache_key(self, path, query):
        scope = json.dumps([self.get_option("url"), query.device_filter(), query.interfaces], sort_keys=True)
        return f"{self.get_cache_key(path)}_{hashlib.sha256(scope.encode()).hexdigest()[:16]}"

    def _hosts(self, path, cache):
        nb = netbox_api.NetBox(self.get_option("url") or "", self.get_option("token") or "",
                               timeout=self.get_option("timeout"), verify=self.get_option("validate_certs"),
                               pool_size=self.get_option("max_workers"))
        query = self._query()
        use_cache = self.get_option("cache") and cache
        key = self._cache_key(path, query)
        marker = netbox_inventory.change_marker(nb)
        if use_cache:
            try:
                cached = self._cache[key]
            except KeyError:
                cached = None
            if cached and cached.get("format") == CACHE_FORMAT and cached.get("marker") == marker:
                return cached["hosts"]
        hosts = netbox_inventory.build_hosts(netbox_inventory.fetch(nb, query, self.get_option("max_workers")))
        if self.get_option("cache"):
            self._cache[key] = {"format": CACHE_FORMAT, "marker": marker, "hosts": hosts}
        return hosts

    # -- inventory -----------------------------------------------------------------------------
    def _populate(self, hosts):
        strict = self.get_option("strict")
        source = self.get_option("ansible_host_source")
        group_by = self.get_option("group_by")
        for name, facts in hosts.items():
            self.inventory.add_host(name)
            for var, value in facts.items():
                self.inventory.set_variable(name, var, value)
            if source != "none" and facts.get(source):
                self.inventory.set_variable(name, "ansible_host", facts[source])
            for fact in group_by:
                if facts.get(fact) not in (None, ""):
                    group = self.inventory.add_group(group_name(fact, facts[fact]))
                    self.inventory.add_child(group, name)
            # Expressions see the host's facts and its name, as Ansible's own constructed plugin lets them.
            scope = {**facts, "inventory_hostname": name}
            self._set_composite_vars(self.get_option("compose"), scope, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), scope, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), scope, name, strict=strict)
