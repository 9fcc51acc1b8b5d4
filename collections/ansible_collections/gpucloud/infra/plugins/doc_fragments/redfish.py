# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""The BMC connection options every gpucloud.infra Redfish action shares (action/bios_settings.py CONNECTION)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  bmc_address:
    description: BMC host name or IP (or an https URL).
    type: str
    required: true
  bmc_port:
    description: BMC HTTPS port.
    type: int
    default: 443
  username:
    description: BMC user.
    type: str
    required: true
  password:
    description: BMC password. Never logged or returned.
    type: str
    required: true
  ca_path:
    description: CA bundle to verify the BMC's certificate with. The environment's E(REQUESTS_CA_BUNDLE) is ignored.
    type: path
  validate_certs:
    description: Verify the BMC's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds per HTTP request.
    type: float
    default: 30
"""
