# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The NetBox connection options every gpucloud.infra NetBox module shares (module_utils/netbox_api.CONNECTION_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description: NetBox base URL. Defaults to E(NETBOX_URL).
    type: str
  token:
    description: NetBox API token, with the permissions the module's task needs. Defaults to E(NETBOX_TOKEN).
    type: str
  validate_certs:
    description: Verify NetBox's TLS certificate.
    type: bool
    default: true
requirements:
  - requests
"""
