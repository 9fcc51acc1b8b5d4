#!/usr/bin/python
# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: netbox_journal
short_description: Write journal entries on NetBox devices, one or many in a bulk call
description:
  - Creates NetBox journal entries (C(/api/extras/journal-entries/)) on devices, or on other objects with
    O(entries[].object_type). Journal entries are append-only, so every run with entries reports a change;
    callers write them only when something happened (e.g. when a BIOS task changed).
  - Bulk-friendly; run it once on the controller (C(delegate_to=localhost), C(run_once=true)) with O(entries)
    for the whole play instead of one call per host. Up to 500 entries go in one POST.
  - Every entry is validated first and all problems are reported at once; nothing is written while any remains.
  - In check mode nothing is written and the result says what would be.
version_added: "0.2.0"
author: gpucloud contributors
extends_documentation_fragment:
  - gpucloud.infra.netbox
options:
  device_id:
    description: NetBox id of the device, for a single entry (with O(comments)).
    type: int
  comments:
    description: Text of a single entry (Markdown).
    type: str
  kind:
    description: Kind of the single entry, and the default for O(entries) that do not say.
    type: str
    choices: [info, success, warning, danger]
    default: info
  entries:
    description: Several entries at once.
    type: list
    elements: dict
    default: []
    suboptions:
      device_id:
        description: NetBox id of the device (or of the object of O(entries[].object_type)).
        type: int
        aliases: [object_id]
        required: true
      comments:
        description: Text of the entry (Markdown).
        type: str
        required: true
      kind:
        description: Kind of the entry; O(kind) when unset.
        type: str
        choices: [info, success, warning, danger]
      object_type:
        description: Content type of the object the entry is on.
        type: str
        default: dcim.device
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Never put secrets in O(comments); journal entries are visible to everyone who can read the device.
"""

EXAMPLES = r"""
- name: One entry on this node's device
  gpucloud.infra.netbox_journal:
    device_id: "{{ netbox_id }}"
    kind: success
    comments: "BIOS tuned: ProcTurboMode=Enabled"
  delegate_to: localhost

- name: One bulk call for the whole play
  gpucloud.infra.netbox_journal:
    entries: >-
      {{ ansible_play_hosts | map('extract', hostvars, 'my_journal_entry') | select | list }}
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
entries:
  description: The entries written (or, in check mode, that would be written), in order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: NetBox id of the entry; null in check mode.
      type: int
    assigned_object_type:
      description: Content type of the object, e.g. C(dcim.device).
      type: str
    assigned_object_id:
      description: Id of the object.
      type: int
    kind:
      description: Kind of the entry.
      type: str
count:
  description: How many entries were written (or would be).
  returned: always
  type: int
"""


from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_api, netbox_journal

KINDS = list(netbox_journal.KINDS)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **netbox_api.CONNECTION_ARGS,
            device_id=dict(type="int"),
            comments=dict(type="str"),
            kind=dict(type="str", default="info", choices=KINDS),
            entries=dict(type="list", elements="dict", default=[], options=dict(
                device_id=dict(type="int", required=True, aliases=["object_id"]),
                comments=dict(type="str", required=True),
                kind=dict(type="str", choices=KINDS),
                object_type=dict(type="str", default="dcim.device"),
            )),
        ),
        required_together=[("device_id", "comments")],
        supports_check_mode=True,
    )
    p = module.params
    entries = list(p["entries"])
    if p["device_id"] is not None:
        entries.insert(0, {"device_id": p["device_id"], "comments": p["comments"], "kind": p["kind"]})
    payloads, errors = netbox_journal.normalize(entries, default_kind=p["kind"])
    if errors:
        module.fail_json(msg=f"{len(errors)} invalid journal entr{'y' if len(errors) == 1 else 'ies'}: "
                         + "; ".join(errors), errors=errors)
    if not payloads or module.check_mode:
        module.exit_json(changed=bool(payloads), count=len(payloads),
                         entries=[{"id": None, "assigned_object_type": e["assigned_object_type"],
                                   "assigned_object_id": e["assigned_object_id"], "kind": e["kind"]}
                                  for e in payloads])
    if not netbox_api.HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    try:
        nb = netbox_api.from_params(module.params)
        written = netbox_journal.write(nb, payloads)
    except netbox_api.NetBoxError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, count=len(written), entries=written)


if __name__ == "__main__":
    main()
