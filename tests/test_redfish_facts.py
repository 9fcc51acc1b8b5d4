"""redfish_facts and redfish_boot against the lab's emulated BMCs."""

import json
import os

import pytest

from conftest import ansible_playbook

pytestmark = pytest.mark.netbox

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    bmc: &bmc
      bmc_address: "{{ address }}"
      bmc_port: "{{ lookup('ansible.builtin.env', 'GPUCLOUD_LAB_BMC_PORT', default='443') | int }}"
      username: admin
      password: "{{ lookup('ansible.builtin.env', 'GPUCLOUD_LAB_BMC_PASSWORD') }}"
      ca_path: "{{ lookup('ansible.builtin.env', 'GPUCLOUD_LAB_BMC_CA') }}"
  tasks:
    - name: Facts
      gpucloud.infra.redfish_facts: *bmc
      register: facts
    - name: PXE once
      gpucloud.infra.redfish_boot:
        <<: *bmc
        target: pxe
      register: boot
    - name: Report
      ansible.builtin.copy:
        content: "{{ {'facts': facts.redfish, 'boot': boot.boot} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
"""


def test_facts_and_one_time_pxe_boot(tmp_path, lab_env, fleet):
    playbook = tmp_path / "facts.yml"
    playbook.write_text(PLAY)
    out = tmp_path / "out.json"
    address = fleet.servers[5].bmc_ip.split("/")[0]
    proc = ansible_playbook(str(playbook), "-e", f"address={address}", "-e", f"out={out}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    facts = report["facts"]
    assert facts["power_state"] == "On" and facts["bios_version"] and facts["system_uri"].startswith("/redfish/v1/")
    assert facts["vendor"] == "generic" and "Pxe" in facts["boot"]["allowed_targets"]
    assert report["boot"] == {"target": "Pxe", "enabled": "Once"}
    assert os.environ["GPUCLOUD_LAB_BMC_PASSWORD"] not in proc.stdout + proc.stderr


def test_bad_credentials_are_clear(tmp_path, lab_env, fleet):
    playbook = tmp_path / "bad.yml"
    playbook.write_text(PLAY.replace("lookup('ansible.builtin.env', 'GPUCLOUD_LAB_BMC_PASSWORD')", "'wrong'"))
    address = fleet.servers[5].bmc_ip.split("/")[0]
    proc = ansible_playbook(str(playbook), "-e", f"address={address}", "-e", f"out={tmp_path}/x")
    assert proc.returncode != 0 and "refused the credentials (401)" in proc.stdout
