#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: netbox_datamodel
short_description: Apply the gpucloud GPU-fleet data model to NetBox
description:
  - Ensures the custom fields gpucloud relies on (GPU, compute, cost, topology, BMC credential
    reference, tenant quotas, network pools and allocations), and the operator's manufacturers,
    device roles, platforms, device types with interface templates, IPAM roles and tenant
    network pools.
  - Idempotent and bulk; a second run reports no change. Check and diff modes are supported.
  - The whole model is validated first and every error is reported at once; nothing is sent
    to NetBox while any error remains.
version_added: "0.1.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  model:
    description:
      - The operator's model, with keys C(manufacturers), C(device_roles), C(platforms),
        C(device_types), C(ipam_roles) and C(network_pools); see the netbox_datamodel role's defaults.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Apply the data model
  gpucloud.infra.netbox_datamodel:
    model:
      manufacturers: [{name: NVIDIA, slug: nvidia}]
      device_roles: [{name: GPU server, slug: gpu-server, color: 76b900}]
      device_types:
        - model: HGX H100 8-GPU
          slug: hgx-h100-8gpu
          manufacturer: nvidia
          gpu: {vendor: NVIDIA, model: H100-SXM5-80GB, count: 8, memory_gb: 80}
          interfaces:
            - {name: bmc, type: 1000base-t, mgmt_only: true}
"""

RETURN = r"""
summary:
  description: Per endpoint, how many objects were created, updated and left unchanged.
  returned: always
  type: dict
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api
from ansible_collections.gpucloud.infra.plugins.module_utils.datamodel import build_collections, validate_model
from ansible_collections.gpucloud.infra.plugins.module_utils.netbox_reconcile import reconcile


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            model=dict(type="dict", required=True),
        ),
        supports_check_mode=True,
    )
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    errors = validate_model(module.params["model"])
    if errors:
        module.fail_json(msg=f"the data model has {len(errors)} error(s): " + "; ".join(errors), errors=errors)
    try:
        nb = netbox_api.from_params(module.params)
        result = reconcile(nb, build_collections(module.params["model"]), check_mode=module.check_mode)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    changed = any(c["created"] or c["updated"] for c in result["summary"].values())
    out = {"changed": changed, "summary": result["summary"]}
    if module._diff:
        out["diff"] = result["diff"]
    module.exit_json(**out)


if __name__ == "__main__":
    main()
