#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: ib_partitions
short_description: Write OpenSM's partitions.conf and the equivalent UFM REST payload from a partition model
description:
  - Renders the partition model (from M(gpucloud.infra.ib_partition_info), or given directly) as OpenSM's
    C(partitions.conf) and as the UFM Enterprise REST requests that set up the same P_Keys
    (C(POST /ufmRest/resources/pkeys/add) per P_Key, then C(POST /ufmRest/resources/pkeys) with its GUIDs and
    per-GUID memberships), as a JSON list of C({method, path, body}).
  - "Both are validated before anything is written: the model against its schema (unique names and P_Keys,
    0x0001-0x7ffe, GUIDs C(0x) and 16 hex digits, no port that is a full member of one partition and in another),
    the rendered file against OpenSM's partition-config grammar plus isolation rules, the payload against a JSON
    schema of UFM's PKey API. Every error is reported at once and nothing is written."
  - There is no InfiniBand fabric in the lab and so no subnet manager to load the file; the offline validation is
    the stand-in for OpenSM accepting it. On a real subnet manager host the role signals OpenSM (SIGHUP) to
    re-read the file.
  - Reads the files, compares, writes only what differs (atomically); changed only when content differs. Check
    and diff modes are supported.
  - Removing a tenant from the model removes exactly its partition from both files.
version_added: "0.4.0"
author: gpucloud contributors
requirements:
  - jsonschema
options:
  model:
    description: The partition model, as M(gpucloud.infra.ib_partition_info) returns it in C(model)
      (C(module_utils/ib_partition.py), C(MODEL)).
    type: dict
    required: true
  conf_path:
    description: Where OpenSM reads its partitions.
    type: path
    default: /etc/opensm/partitions.conf
  ufm_payload_path:
    description: Where to write the UFM REST payload (JSON); not given, none is written.
    type: path
  mode:
    description: File mode of the written files.
    type: raw
    default: "0644"
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Read the partitions from NetBox
  gpucloud.infra.ib_partition_info:
  register: ib
  delegate_to: localhost
  run_once: true

- name: Write partitions.conf and the UFM payload on the subnet manager
  gpucloud.infra.ib_partitions:
    model: "{{ ib.model }}"
    conf_path: /etc/opensm/partitions.conf
    ufm_payload_path: /etc/opensm/ufm-pkeys.json
"""

RETURN = r"""
conf:
  description: The partitions.conf text.
  returned: always
  type: str
payload:
  description: The UFM REST requests, in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {method: POST, path: /ufmRest/resources/pkeys/add, body: {pkey: "0x0101", index0: false, ip_over_ib: true}}
    - method: POST
      path: /ufmRest/resources/pkeys
      body: {pkey: "0x0101", index0: false, ip_over_ib: true, guids: ["1070fd0300000001"], memberships: [full]}
files:
  description: Per written path, whether it differed (and so was, or in check mode would be, written).
  returned: always
  type: dict
  sample: {/etc/opensm/partitions.conf: true, /etc/opensm/ufm-pkeys.json: false}
partitions:
  description: Per partition name, its P_Key and how many full and limited members it has.
  returned: always
  type: dict
  sample: {acme: {pkey: "0x0101", full: 4, limited: 1}}
errors:
  description: Every validation error, when the module fails on them.
  returned: failure
  type: list
  elements: str
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import ib_partition

try:
    import jsonschema  # noqa: F401  (ib_partition's validation)

    HAS_JSONSCHEMA = True
except ImportError:
    HAS_JSONSCHEMA = False


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model=dict(type="dict", required=True),
            conf_path=dict(type="path", default="/etc/opensm/partitions.conf"),
            ufm_payload_path=dict(type="path"),
            mode=dict(type="raw", default="0644"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib("jsonschema"))
    try:
        mode = int(str(p["mode"]), 8)
    except ValueError:
        module.fail_json(msg=f"mode: '{p['mode']}' is not an octal file mode such as 0644")
    try:
        out = ib_partition.outputs(p["model"])
    except ib_partition.IbPartitionError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    wanted = {p["conf_path"]: out["conf"]}
    if p["ufm_payload_path"]:
        wanted[p["ufm_payload_path"]] = out["ufm"]
    diffs, files = [], {}
    try:
        for path, text in wanted.items():
            before = ib_partition.read_text(path)
            files[path] = before != text
            if files[path]:
                diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": text})
                if not module.check_mode:
                    ib_partition.write_text(path, text, mode)
    except OSError as exc:
        module.fail_json(msg=f"cannot write {exc.filename}: {exc.strerror}", files=files)
    summary = {part["name"]: {"pkey": part["pkey"],
                              "full": sum(m["membership"] != "limited" for m in part["members"]),
                              "limited": sum(m["membership"] == "limited" for m in part["members"])}
               for part in p["model"]["partitions"]}
    result = dict(changed=any(files.values()), conf=out["conf"], payload=out["payload"], files=files,
                  partitions=summary)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
