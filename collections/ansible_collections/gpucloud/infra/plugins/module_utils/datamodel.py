# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The GPU-cloud data model in NetBox: the custom fields every gpucloud component relies on, and
the translation of an operator's model (device types, roles, pools) into netbox_reconcile
collections.

The custom fields below are a contract: the inventory plugin, placement, BIOS tuning and the
fabric code read them by these names. Device types, roles, platforms and pools are data that
operators extend in the netbox_datamodel role's defaults.
"""

from __future__ import annotations

import ipaddress
import re

DEVICE = "dcim.device"
DEVICE_TYPE = "dcim.devicetype"
PLATFORM = "dcim.platform"
TENANT = "tenancy.tenant"

GPU_VENDORS = ["NVIDIA", "AMD", "Intel"]
# Fabric-wide settings a pool definition may leave out (RFC 9135's anycast gateway MAC as most
# vendors' examples use it; IANA's VXLAN port).
DEFAULT_ANYCAST_GATEWAY_MAC = "00:00:5e:00:01:01"
DEFAULT_VXLAN_UDP_PORT = 4789
MAC = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"
ASN_MAX = 4294967295
CPU_VENDORS = ["intel", "amd", "arm"]

CHOICE_SETS = [
    {"name": "gpucloud-gpu-vendors", "extra_choices": [[v, v] for v in GPU_VENDORS],
     "description": "GPU vendors gpucloud knows how to tune and schedule"},
    {"name": "gpucloud-cpu-vendors", "extra_choices": [[v, v] for v in CPU_VENDORS],
     "description": "CPU vendors; they decide the IOMMU kernel arguments"},
]


def _cf(name, label, type_, object_types, description, group, **extra):
    return {"name": name, "label": label, "type": type_, "object_types": object_types,
            "description": description, "group_name": group, **extra}


HARDWARE = [DEVICE_TYPE, DEVICE]
CUSTOM_FIELDS = [
    _cf("gpu_vendor", "GPU vendor", "select", HARDWARE, "GPU vendor", "GPU",
        choice_set={"name": "gpucloud-gpu-vendors"}),
    _cf("gpu_model", "GPU model", "text", HARDWARE, "GPU model, e.g. H100-SXM5-80GB", "GPU"),
    _cf("gpu_count", "GPU count", "integer", HARDWARE, "GPUs per server", "GPU", validation_minimum=0),
    _cf("gpu_memory_gb", "GPU memory (GB)", "integer", HARDWARE, "Memory per GPU in GB", "GPU",
        validation_minimum=0),
    _cf("cpu_vendor", "CPU vendor", "select", HARDWARE, "Host CPU vendor", "Compute",
        choice_set={"name": "gpucloud-cpu-vendors"}),
    _cf("cpu_cores", "CPU cores", "integer", HARDWARE, "Physical CPU cores per server", "Compute",
        validation_minimum=0),
    _cf("memory_gb", "Memory (GB)", "integer", HARDWARE, "Host memory in GB", "Compute", validation_minimum=0),
    _cf("hourly_cost", "Hourly cost", "decimal", HARDWARE,
        "Cost per hour of one server; a device's value overrides its type's", "Cost", validation_minimum=0),
    _cf("storage_tb", "Local storage (TB)", "decimal", HARDWARE,
        "Local NVMe capacity of one server in TB (counts against the storage quota)", "Compute",
        validation_minimum=0),
    _cf("nvlink_domain", "NVLink domain", "text", [DEVICE],
        "NVLink/NVSwitch domain this server's GPUs share (one per HGX board, one per NVL72 rack)",
        "Topology"),
    _cf("ib_port_guids", "IB port GUIDs", "json", [DEVICE],
        "InfiniBand HCA port GUIDs, e.g. [\"0x1070fd0300a1b2c3\"]", "Topology"),
    _cf("bmc_credential_ref", "BMC credential reference", "text", [DEVICE],
        "Where the BMC credential lives (vault:<path>#<key> or env:<VAR>); never the secret itself. Not file:, "
        "so that editing NetBox cannot make the controller send one of its own files to a BMC",
        "BMC", validation_regex=r"^(vault|env):[A-Za-z0-9_./:#-]+$"),
    _cf("bios_overrides", "BIOS overrides", "json", [DEVICE],
        "Per-node BIOS attributes (vendor names) applied over the intent profile, e.g. {\"SriovGlobalEnable\": "
        "\"Enabled\"}", "BMC"),
    _cf("quota_gpus", "Quota: GPUs", "integer", [TENANT], "GPUs the tenant may hold", "Quota",
        validation_minimum=0),
    _cf("quota_cpus", "Quota: CPUs", "integer", [TENANT], "CPU cores the tenant may hold", "Quota",
        validation_minimum=0),
    _cf("quota_memory_gb", "Quota: memory (GB)", "integer", [TENANT], "Host memory the tenant may hold",
        "Quota", validation_minimum=0),
    _cf("quota_storage_tb", "Quota: storage (TB)", "decimal", [TENANT], "Storage the tenant may hold",
        "Quota", validation_minimum=0),
    _cf("quota_gpus_by_model", "Quota: GPUs by model", "json", [TENANT],
        "GPUs the tenant may hold per GPU model, e.g. {\"H100-SXM5-80GB\": 16}", "Quota"),
    _cf("quota_alert_thresholds", "Quota alert thresholds (%)", "json", [TENANT],
        "Usage percentages that raise a quota alert; empty means [80, 100]", "Quota"),
    _cf("projects", "Projects", "json", [TENANT],
        "The tenant's projects and their quotas: {\"<project>\": {\"description\": ..., \"quota\": {\"gpus\": 16, "
        "\"gpus_by_model\": {...}, \"cpus\": ..., \"memory_gb\": ..., \"storage_tb\": ...}}}", "Quota"),
    # Usage is computed from the tenant's reserved devices and written back after every reservation
    # and release, so the tenant's NetBox page shows quota and usage side by side.
    *[_cf(f"usage_{name}", f"Usage: {label}", kind, [TENANT], f"{label} the tenant holds now (written by gpucloud)",
          "Usage", ui_editable="no")
      for name, label, kind in (("gpus", "GPUs", "integer"), ("cpus", "CPUs", "integer"),
                                ("memory_gb", "memory (GB)", "integer"), ("storage_tb", "storage (TB)", "decimal"),
                                ("gpus_by_model", "GPUs by model", "json"))],
    _cf("onboarding_state", "Onboarding state", "text", [TENANT],
        "Where the tenant's onboarding or offboarding stands: a step name, ready, failed:<step> or offboarded",
        "Lifecycle", ui_editable="no"),
    _cf("project", "Project", "text", [DEVICE], "The tenant project a reserved node belongs to", "Tenancy",
        validation_regex=r"^[a-z0-9][a-z0-9-]{0,49}$"),
    # Tenant network pools live on the fabric's VLAN group: its VID ranges are the VLAN pool and
    # these ranges the VNI and partition-key pools, so one NetBox object shows (and expands) them all.
    _cf("pool_l3vni", "L3VNI pool", "text", ["ipam.vlangroup"], "Tenant VRF L3VNI range, e.g. 50001-54000",
        "Pools", validation_regex=r"^\d+-\d+$"),
    _cf("pool_l2vni", "L2VNI pool", "text", ["ipam.vlangroup"], "Tenant VLAN L2VNI range", "Pools",
        validation_regex=r"^\d+-\d+$"),
    _cf("pool_ib_pkey", "IB partition key pool", "text", ["ipam.vlangroup"],
        "InfiniBand P_Key range, hex, e.g. 0x0100-0x7ffe", "Pools",
        validation_regex=r"^0x[0-9a-fA-F]{1,4}-0x[0-9a-fA-F]{1,4}$"),
    _cf("pool_evpn_asn", "EVPN ASN", "integer", ["ipam.vlangroup"],
        "ASN for tenant route targets (<asn>:<vni>)", "Pools", validation_minimum=1),
    _cf("fabric_anycast_gateway_mac", "Anycast gateway MAC", "text", ["ipam.vlangroup"],
        "MAC address every leaf's tenant SVIs share (distributed anycast gateway), lowercase", "Fabric",
        validation_regex=MAC),
    _cf("fabric_vxlan_udp_port", "VXLAN UDP port", "integer", ["ipam.vlangroup"],
        "UDP port of the fabric's VXLAN tunnels", "Fabric", validation_minimum=1, validation_maximum=65535),
    # The underlay a switch's fabric config needs, the NetBox way: its ASN here; its router-id/VTEP is the
    # address with role loopback on its virtual interface "lo"; its point-to-point addresses sit on the
    # cabled uplink interfaces (the cable gives the peer).
    _cf("bgp_asn", "BGP ASN", "integer", [DEVICE], "The switch's own BGP AS number (eBGP underlay and EVPN)",
        "Fabric", validation_minimum=1, validation_maximum=ASN_MAX),
    # Allocations taken from those pools. unique=True makes NetBox itself refuse a double allocation,
    # so concurrent allocators can race safely and retry.
    _cf("l3vni", "L3VNI", "integer", ["ipam.vrf"], "VXLAN VNI of the tenant VRF", "Fabric", unique=True),
    _cf("l2vni", "L2VNI", "integer", ["ipam.vlan"], "VXLAN VNI of the tenant VLAN", "Fabric", unique=True),
    _cf("ib_pkey", "IB partition key", "text", [TENANT], "The tenant's InfiniBand P_Key (hex)", "Fabric",
        unique=True, validation_regex=r"^0x[0-9a-fA-F]{4}$"),
    # Golden OS images are platforms. A Platform is NetBox's model for the software a device runs: every
    # device points at one (device.platform), the device list, its filters and the device page show it,
    # the inventory plugin groups by it, config contexts can key on it, and nested platforms (parent)
    # give image family -> version. So "which node should run which image" is plain NetBox, not a
    # side table. The version platform carries the build's identity and its whole manifest.
    _cf("image_version", "Image version", "text", [PLATFORM], "Golden image version, e.g. 20261123.1", "Image"),
    _cf("image_build_key", "Image build key", "text", [PLATFORM],
        "sha256 over everything that shaped the build; equal keys mean equal images", "Image",
        validation_regex=r"^[0-9a-f]{64}$"),
    _cf("image_manifest", "Image manifest", "json", [PLATFORM],
        "The image's manifest: base, kernel, cmdline, tuning, pinned GPU stack, packages, artifacts", "Image"),
    _cf("image_sha256", "Image sha256", "text", [PLATFORM], "sha256 of the image's qcow2 (raw when none)",
        "Image", validation_regex=r"^[0-9a-f]{64}$"),
]

# gpucloud clusters are NetBox clusters of these types; their devices hold the cluster's nodes.
CLUSTER_TYPES = [
    {"name": "Slurm", "slug": "slurm", "description": "gpucloud Slurm cluster"},
    {"name": "Kubernetes", "slug": "k8s", "description": "gpucloud Kubernetes cluster"},
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def _interfaces(device_type: dict) -> list[dict]:
    """Interface templates of a device type; {name: 'swp{n}', count: 64} expands to swp1..swp64."""
    out = []
    for spec in device_type.get("interfaces", []):
        names = ([spec["name"].format(n=n) for n in range(1, spec["count"] + 1)]
                 if spec.get("count") else [spec["name"]])
        for name in names:
            out.append({"device_type": {"slug": device_type["slug"]}, "name": name, "type": spec["type"],
                        "mgmt_only": bool(spec.get("mgmt_only", False)),
                        "description": spec.get("description", "")})
    return out


def _device_type_fields(dt: dict) -> dict:
    gpu, cpu = dt.get("gpu") or {}, dt.get("cpu") or {}
    fields = {
        "gpu_vendor": gpu.get("vendor"), "gpu_model": gpu.get("model"), "gpu_count": gpu.get("count"),
        "gpu_memory_gb": gpu.get("memory_gb"), "cpu_vendor": cpu.get("vendor"), "cpu_cores": cpu.get("cores"),
        "memory_gb": dt.get("memory_gb"), "hourly_cost": dt.get("hourly_cost"), "storage_tb": dt.get("storage_tb"),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _pool_group(pool: dict) -> dict:
    return {
        "name": pool["name"], "slug": pool["slug"], "vid_ranges": [pool["vlan_range"]],
        "description": pool.get("description", "gpucloud tenant fabric pools"),
        "custom_fields": {"pool_l3vni": pool["l3vni_range"], "pool_l2vni": pool["l2vni_range"],
                          "pool_ib_pkey": pool["ib_pkey_range"], "pool_evpn_asn": pool["evpn_asn"],
                          "fabric_anycast_gateway_mac": pool.get("anycast_gateway_mac", DEFAULT_ANYCAST_GATEWAY_MAC),
                          "fabric_vxlan_udp_port": pool.get("vxlan_udp_port", DEFAULT_VXLAN_UDP_PORT)},
    }


def build_collections(model: dict) -> list[dict]:
    """The operator's model as ordered netbox_reconcile collections."""
    device_types = model.get("device_types", [])
    pools = model.get("network_pools", [])
    return [
        {"endpoint": "extras/custom-field-choice-sets", "key": ["name"], "objects": CHOICE_SETS},
        {"endpoint": "extras/custom-fields", "key": ["name"], "objects": CUSTOM_FIELDS},
        {"endpoint": "dcim/manufacturers", "key": ["slug"], "objects": model.get("manufacturers", [])},
        {"endpoint": "dcim/device-roles", "key": ["slug"], "objects": model.get("device_roles", [])},
        {"endpoint": "dcim/platforms", "key": ["slug"], "objects": model.get("platforms", [])},
        {"endpoint": "dcim/device-types", "key": ["slug"], "objects": [
            {"manufacturer": {"slug": dt["manufacturer"]}, "model": dt["model"], "slug": dt["slug"],
             "u_height": dt.get("u_height", 1), "is_full_depth": dt.get("is_full_depth", True),
             "custom_fields": _device_type_fields(dt)} for dt in device_types]},
        {"endpoint": "dcim/interface-templates", "key": ["device_type.slug", "name"],
         "objects": [t for dt in device_types for t in _interfaces(dt)]},
        {"endpoint": "ipam/roles", "key": ["slug"], "objects": model.get("ipam_roles", [])},
        {"endpoint": "virtualization/cluster-types", "key": ["slug"], "objects": CLUSTER_TYPES},
        {"endpoint": "ipam/vlan-groups", "key": ["slug"], "objects": [_pool_group(p) for p in pools]},
        {"endpoint": "ipam/prefixes", "key": ["prefix"], "objects": [
            {"prefix": p["tenant_prefix_pool"], "status": "container", "role": {"slug": "tenant-pool"},
             "description": f"tenant subnets of {p['name']}"} for p in pools]},
    ]


def _check_range(errors, where, value, low, high, parse=int):
    text = str(value)
    if parse is int:
        match = _RANGE.match(text)
        bounds = (int(match.group(1)), int(match.group(2))) if match else None
    else:
        try:
            a, b = text.split("-")
            bounds = (int(a, 16), int(b, 16))
        except ValueError:
            bounds = None
    if not bounds or not (low <= bounds[0] <= bounds[1] <= high):
        errors.append(f"{where}: expected a range 'first-last' within {low}-{high}, got {value!r}")


def _fabric_setting_errors(where: str, pool: dict) -> list[str]:
    errors = []
    mac = pool.get("anycast_gateway_mac", DEFAULT_ANYCAST_GATEWAY_MAC)
    if not isinstance(mac, str) or not re.match(MAC, mac):
        errors.append(f"{where}.anycast_gateway_mac: expected a lowercase MAC like {DEFAULT_ANYCAST_GATEWAY_MAC}, "
                      f"got {mac!r}")
    port = pool.get("vxlan_udp_port", DEFAULT_VXLAN_UDP_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append(f"{where}.vxlan_udp_port: expected a port within 1-65535, got {port!r}")
    return errors


def validate_model(model: dict) -> list[str]:
    """Every problem in the operator's model at once, each naming its field."""
    errors = []
    known_mfr = {m.get("slug") for m in model.get("manufacturers", [])}
    for section in ("manufacturers", "device_roles", "platforms", "ipam_roles", "device_types"):
        for i, item in enumerate(model.get(section, [])):
            if not _SLUG.match(str(item.get("slug", ""))):
                errors.append(f"{section}[{i}].slug: expected lowercase letters, digits, '-' or '_', "
                              f"got {item.get('slug')!r}")
    for i, dt in enumerate(model.get("device_types", [])):
        where = f"device_types[{i}] ({dt.get('slug')})"
        if dt.get("manufacturer") not in known_mfr:
            errors.append(f"{where}.manufacturer: expected one of {sorted(known_mfr)}, got {dt.get('manufacturer')!r}")
        gpu = dt.get("gpu")
        if gpu:
            if gpu.get("vendor") not in GPU_VENDORS:
                errors.append(f"{where}.gpu.vendor: expected one of {GPU_VENDORS}, got {gpu.get('vendor')!r}")
            for field in ("count", "memory_gb"):
                if not isinstance(gpu.get(field), int) or gpu[field] < 1:
                    errors.append(f"{where}.gpu.{field}: expected a positive integer, got {gpu.get(field)!r}")
        cpu = dt.get("cpu")
        if cpu and cpu.get("vendor") not in CPU_VENDORS:
            errors.append(f"{where}.cpu.vendor: expected one of {CPU_VENDORS}, got {cpu.get('vendor')!r}")
        for j, spec in enumerate(dt.get("interfaces", [])):
            if "count" in spec and "{n}" not in str(spec.get("name")):
                errors.append(f"{where}.interfaces[{j}].name: a counted interface needs '{{n}}' in its name")
    for i, pool in enumerate(model.get("network_pools", [])):
        where = f"network_pools[{i}]"
        vlan = pool.get("vlan_range")
        if not (isinstance(vlan, list) and len(vlan) == 2 and 1 <= vlan[0] <= vlan[1] <= 4094):
            errors.append(f"{where}.vlan_range: expected [first, last] within 1-4094, got {vlan!r}")
        _check_range(errors, f"{where}.l3vni_range", pool.get("l3vni_range"), 1, 16777215)
        _check_range(errors, f"{where}.l2vni_range", pool.get("l2vni_range"), 1, 16777215)
        _check_range(errors, f"{where}.ib_pkey_range", pool.get("ib_pkey_range"), 0x0001, 0x7FFE, parse="hex")
        errors += _fabric_setting_errors(where, pool)
        try:
            ipaddress.ip_network(str(pool.get("tenant_prefix_pool")))
        except ValueError:
            errors.append(f"{where}.tenant_prefix_pool: expected a network like 10.200.0.0/16, "
                          f"got {pool.get('tenant_prefix_pool')!r}")
    return errors
