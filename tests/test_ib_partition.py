"""InfiniBand partitions (gpucloud.infra.ib_partition_info / ib_partitions, role ib_partition).

There is no InfiniBand here and so no OpenSM to load a partitions.conf: the validator in module_utils/ib_partition.py
is the stand-in, so it is tested data-driven (a good file with every construct parses; each bad input gives an error
naming its line and field), with the render -> parse round trip and the UFM payload schema. Then, against the real
lab NetBox: the reader (P_Keys allocated by tenant_network), and the role's check / apply / re-apply, and removing
one tenant's P_Key removing exactly its partition.
"""

import json

import pytest

from ansible_collections.gpucloud.infra.plugins.module_utils import ib_partition as ib
from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_ib
from ansible_collections.gpucloud.infra.plugins.module_utils import tenant_network as tn
from conftest import ansible_playbook, recap

DEFAULT = "Default=0x7fff, ipoib : ALL=limited, SELF=full ;\n"
G1, G2, G3, G4 = (f"0x1070fd03000000{n:02x}" for n in (1, 2, 3, 4))

# Every construct of the grammar this validator accepts, in one file.
GOOD = f"""# comment line
Default=0x7fff, ipoib, rate=3, mtu=4 : ALL=limited, ALL_SWITCHES=full, SELF=full ;   # trailing comment
acme=0x0101, ipoib, indx0, mtu=5, sl=1, defmember=full :
    {G1},            # wrapped after a comma
    {G2}=both,
    {G4}=limited ;
# the same P_Key and name again: OpenSM merges the two
acme = 0x0101 : {G3} ;
empty=0x0102 : ;
mcast=0x0103, ipoib, scope=5, qkey=0x0b1b, tclass=0, FlowLabel=0x10 :
    mgid=ff12:401b::0707, sl=1, rate=16
    mgid=ff12:601b::16
    ALL_CAS=limited ;
"""

# (id, bad statement appended after the Default partition on line 2, what the error must say)
BAD = [
    ("no-colon", "acme=0x0101 ;", ["line 2", "no ':'"]),
    ("unterminated", f"acme=0x0101 : {G1}", ["line 2", "not terminated by ';'"]),
    ("no-name", f"=0x0101 : {G1} ;", ["line 2", "no name"]),
    ("bad-name", f"ac me=0x0101 : {G1} ;", ["line 2", "name 'ac me'"]),
    ("no-pkey", f"acme : {G1} ;", ["line 2", "no PKey"]),
    ("pkey-not-hex", f"acme=257 : {G1} ;", ["line 2", "PKey '257'"]),
    ("pkey-zero", f"acme=0x0 : {G1} ;", ["line 2", "0x0000"]),
    ("pkey-membership-bit", f"acme=0x8101 : {G1} ;", ["line 2", "membership bit", "0x0101"]),
    ("pkey-default-taken", f"acme=0x7fff : {G1} ;", ["line 2", "0x7fff belongs to the partition named 'Default'"]),
    ("duplicate-pkey", f"acme=0x0101 : {G1} ;\nglobex=0x0101 : {G2} ;", ["line 3", "PKey 0x0101", "'acme' on line 2"]),
    ("duplicate-name", f"acme=0x0101 : {G1} ;\nacme=0x0102 : {G2} ;", ["line 3", "'acme' has PKey 0x0101"]),
    ("short-guid", "acme=0x0101 : 0x1234=full ;", ["line 2", "port '0x1234'", "16 hex digits"]),
    ("decimal-guid", "acme=0x0101 : 1187498000000001 ;", ["line 2", "port '1187498000000001'"]),
    ("bad-membership", f"acme=0x0101 : {G1}=limi ;", ["line 2", "membership 'limi'"]),
    ("guid-twice", f"acme=0x0101 :\n {G1}=full,\n {G1}=full ;", ["line 4", "listed twice", "also line 3"]),
    ("empty-member", f"acme=0x0101 : {G1},, {G2} ;", ["line 2", "empty member"]),
    ("trailing-comma", f"acme=0x0101 : {G1}, ;", ["line 2", "empty member"]),
    ("unknown-flag", f"acme=0x0101, ipob : {G1} ;", ["line 2", "unknown flag 'ipob'"]),
    ("flag-twice", f"acme=0x0101, mtu=4, mtu=5 : {G1} ;", ["line 2", "'mtu' given twice"]),
    ("ipoib-value", f"acme=0x0101, ipoib=1 : {G1} ;", ["line 2", "takes no value"]),
    ("mtu-range", f"acme=0x0101, mtu=6 : {G1} ;", ["line 2", "mtu=6", "1-5"]),
    ("rate-code", f"acme=0x0101, rate=1 : {G1} ;", ["line 2", "rate=1"]),
    ("sl-range", f"acme=0x0101, sl=16 : {G1} ;", ["line 2", "sl=16", "0-15"]),
    ("scope-value", f"acme=0x0101, scope=3 : {G1} ;", ["line 2", "scope=3"]),
    ("qkey-not-number", f"acme=0x0101, qkey=abc : {G1} ;", ["line 2", "qkey='abc'"]),
    ("defmember-value", f"acme=0x0101, defmember=partial : {G1} ;", ["line 2", "defmember 'partial'"]),
    ("mgid-not-multicast", "acme=0x0101, ipoib : mgid=fe80::1 ;", ["line 2", "mgid 'fe80::1'"]),
    ("bridge", f"acme=0x0101 : {G1}=full ;\nglobex=0x0102 : {G1}=limited ;",
     ["line 2", f"{G1} is a full member of acme and also in globex"]),
    ("long-line", "acme=0x0101 : " + ", ".join([G1] * 230) + " ;", ["line 2", "longer than the 4096"]),
    ("empty-statement", " ;", ["line 2", "empty statement"]),
]
# Broken Default partitions (the whole file).
BAD_DEFAULT = [
    ("no-default", f"acme=0x0101 : {G1} ;\n", ["line 1", "no 'Default=0x7fff' partition"]),
    ("all-full", "Default=0x7fff : ALL=full, SELF=full ;\n", ["line 1", "ALL=full", "every tenant"]),
    ("no-self", "Default=0x7fff : ALL=limited ;\n", ["line 1", "lacks SELF=full"]),
    ("default-renamed", "Fallback=0x7fff : ALL=limited, SELF=full ;\n", ["line 1", "0x7fff belongs"]),
]


def test_good_file_parses():
    assert ib.conf_errors(GOOD) == []
    parts, errors = ib.parse(GOOD)
    assert errors == [] and [p["line"] for p in parts] == [2, 3, 8, 9, 10]
    mcast = parts[4]
    assert [g["mgid"] for g in mcast["mgroups"]] == ["ff12:401b::0707", "ff12:601b::16"]
    assert mcast["mgroups"][0]["flags"] == {"sl": 1, "rate": 16}
    assert mcast["flags"] == {"ipoib": True, "scope": 5, "qkey": 0x0B1B, "tclass": 0, "flowlabel": 0x10}
    model = ib.model_from_conf(GOOD)
    acme = model["partitions"][0]
    assert acme["pkey"] == "0x0101" and acme["index0"] and acme["mtu"] == 5 and acme["sl"] == 1
    # defmember=full applies to the first definition's bare GUID, OpenSM's default (limited) to the second's.
    assert acme["members"] == [{"guid": G1, "membership": "full"}, {"guid": G2, "membership": "both"},
                               {"guid": G3, "membership": "limited"}, {"guid": G4, "membership": "limited"}]
    assert model["partitions"][1] == {"name": "empty", "pkey": "0x0102", "ipoib": False, "index0": False,
                                      "members": []}
    assert model["default"] == {"ipoib": True, "rate": 3, "mtu": 4}


@pytest.mark.parametrize(("statement", "expected"), [(s, e) for _, s, e in BAD], ids=[i for i, _, _ in BAD])
def test_bad_statement(statement, expected):
    errors = ib.conf_errors(DEFAULT + statement + "\n")
    assert errors, "accepted"
    text = "\n".join(errors)
    assert all(e in text for e in expected), text


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD_DEFAULT], ids=[i for i, _, _ in BAD_DEFAULT])
def test_bad_default_partition(text, expected):
    joined = "\n".join(ib.conf_errors(text))
    assert all(e in joined for e in expected), joined


def test_every_error_at_once_in_line_order():
    text = DEFAULT + f"acme=0x8101 : {G1}=limi ;\nglobex : 0x12 ;\ninitech=0x0103, mtu=9 : {G2}\n"
    errors = ib.conf_errors(text)
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 2", "line 3", "line 3", "line 4", "line 4"], errors


def tenants_model(**options):
    tenants = [{"tenant": "globex", "pkey": "0x0102", "members": [{"guid": G3, "device": "n3"}]},
               {"tenant": "acme", "pkey": "0x101", "members": [{"guid": G1.upper().replace("0X", "0x"),
                                                                  "device": "n1"}, {"guid": G2}]},
               {"tenant": "initech", "pkey": "0x7ffe", "members": []}]
    return ib.build(tenants, [{"guid": G4, "device": "storage-1"}], **options)


def plain(model):
    """A model as the file holds it: no device names, no tenant field."""
    return {"default": model["default"],
            "partitions": [{**{k: v for k, v in p.items() if k != "tenant"},
                            "members": [{k: v for k, v in m.items() if k != "device"} for m in p["members"]]}
                           for p in model["partitions"]]}


@pytest.mark.parametrize("options", [{}, {"ipoib": False, "index0": True, "qos": {"mtu": 5, "rate": 16, "sl": 3},
                                          "default_ipoib": False}], ids=["defaults", "qos"])
def test_render_parse_round_trip(options):
    model = tenants_model(**options)
    assert ib.model_errors(model) == []
    text = ib.render(model)
    assert ib.conf_errors(text) == []
    assert ib.model_from_conf(text) == plain(model)
    assert [p["name"] for p in model["partitions"]] == ["acme", "globex", "initech"]  # by P_Key
    assert ib.render(ib.model_from_conf(text)).replace("  # n1", "").replace("  # storage-1", "") \
        .replace("  # n3", "") == text.replace("  # n1", "").replace("  # storage-1", "").replace("  # n3", "")


def test_model_errors_all_at_once():
    model = tenants_model()
    parts = model["partitions"]
    parts[1]["pkey"] = "0x0101"                      # globex takes acme's P_Key
    parts[2]["name"] = "acme"                        # initech takes acme's name
    parts[2]["members"] = [{"guid": G1, "membership": "limited"}]  # and acme's server: a bridge
    parts.append({"name": "Default", "pkey": "0x7fff", "members": [{"guid": "0x1", "membership": "full"}],
                  "mtu": 7, "colour": "red"})
    errors = ib.model_errors(model)
    text = "\n".join(errors)
    for expected in ("partitions[1].pkey: 0x0101 is also partitions[0]'s", "partitions[2].name: acme is also",
                     f"{G1} is a full member of acme and also in acme (limited)", "partitions[3].pkey: 0x7fff",
                     "partitions[3].name: 'Default'", "partitions[3].members[0].guid", "partitions[3].mtu",
                     "partitions[3]: Additional properties"):
        assert expected in text, text
    with pytest.raises(ib.IbPartitionError) as exc:
        ib.outputs(model)
    assert exc.value.errors == errors


def test_ufm_payload():
    payload = ib.ufm_payload(tenants_model(qos={"mtu": 5, "rate": 16, "sl": 3}))
    assert ib.ufm_errors(payload) == []
    assert [(r["path"], r["body"]["pkey"]) for r in payload] == [
        ("/ufmRest/resources/pkeys/add", "0x0101"), ("/ufmRest/resources/pkeys", "0x0101"),
        ("/ufmRest/resources/pkeys/add", "0x0102"), ("/ufmRest/resources/pkeys", "0x0102"),
        ("/ufmRest/resources/pkeys/add", "0x7ffe"), ("/ufmRest/resources/pkeys", "0x7ffe")]
    assert payload[0]["body"] == {"pkey": "0x0101", "index0": False, "ip_over_ib": True, "mtu_limit": 5,
                                  "service_level": 3, "rate_limit": 100}
    assert payload[1]["body"]["guids"] == [G1[2:], G2[2:], G4[2:]]
    assert payload[1]["body"]["memberships"] == ["full", "full", "limited"]
    # A partition without members is created (pkeys/add) and gets no GUIDs request, which needs at least one.
    empty = ib.ufm_payload(ib.build([{"tenant": "initech", "pkey": "0x0103", "members": []}]))
    assert empty == [{"method": "POST", "path": "/ufmRest/resources/pkeys/add",
                      "body": {"pkey": "0x0103", "index0": False, "ip_over_ib": True}}]


UFM_BAD = [
    ("default-pkey", lambda p: p[0]["body"].update(pkey="0x7fff"), "[0].body.pkey"),
    ("zero-pkey", lambda p: p[0]["body"].update(pkey="0x0"), "[0].body.pkey"),
    ("guid-with-0x", lambda p: p[1]["body"]["guids"].__setitem__(0, "0x12"), "[1].body.guids[0]"),
    ("no-guids", lambda p: p[1]["body"].update(guids=[]), "[1].body.guids"),
    ("both-membership", lambda p: p[1]["body"]["memberships"].__setitem__(0, "both"), "[1].body.memberships[0]"),
    ("memberships-length", lambda p: p[1]["body"]["memberships"].pop(), "[1].body.memberships: 2 entries for 3"),
    ("membership-conflict", lambda p: p[1]["body"].update(membership="full"), "[1].body"),
    ("unknown-field", lambda p: p[0]["body"].update(mtu=5), "[0].body: Additional properties"),
    ("rate-not-a-rate", lambda p: p[0]["body"].update(rate_limit=7), "[0].body.rate_limit"),
    ("wrong-path", lambda p: p[0].update(path="/ufmRest/actions/add_guids_to_pkey"), "[0].path"),
    ("put", lambda p: p[0].update(method="PUT"), "[0].method"),
]


@pytest.mark.parametrize(("spoil", "expected"), [(s, e) for _, s, e in UFM_BAD], ids=[i for i, _, _ in UFM_BAD])
def test_ufm_payload_schema_rejects(spoil, expected):
    payload = ib.ufm_payload(tenants_model())
    spoil(payload)
    errors = ib.ufm_errors(payload)
    assert any(e.startswith(expected) for e in errors), errors


# -- against the lab NetBox ---------------------------------------------------------------------------------
POOL = "tenant-fabric"
# A port GUID no lab server has (the fleet's are 0x1070fd0300<index>): a storage port given by GUID.
STORAGE_GUID = "0x98039b03000000fe"


def allocate(nb, *tenants) -> dict:
    """The tenants' P_Keys, allocated the way the platform does it (gpucloud.infra.tenant_network)."""
    return {t: tn.present(nb, t, POOL, 1)["allocation"]["ib_pkey"] for t in tenants}


def servers(nb, tenant) -> dict:
    return {d["name"]: d["custom_fields"]["ib_port_guids"]
            for d in nb.list("dcim/devices", tenant=tenant, fields="id,name,custom_fields")}


def spare_server(nb) -> dict:
    """A server without tenant: the stand-in for a storage node that is a limited member everywhere."""
    return next(d for d in nb.list("dcim/devices", tenant_id="null", role="gpu-server",
                                   fields="id,name,custom_fields") if d["custom_fields"]["ib_port_guids"])


def test_netbox_reader(nb, restore_fleet_after):
    pkeys = allocate(nb, "acme", "globex")
    storage = spare_server(nb)
    model = netbox_ib.read(nb, limited=[storage["name"], STORAGE_GUID])["model"]
    assert [(p["name"], p["pkey"]) for p in model["partitions"]] == sorted(pkeys.items(), key=lambda kv: kv[1])
    for part in model["partitions"]:
        full = {m["device"]: m["guid"] for m in part["members"] if m["membership"] == "full"}
        assert full == {name: guids[0] for name, guids in servers(nb, part["name"]).items()}
        assert [(m["guid"], m.get("device")) for m in part["members"] if m["membership"] == "limited"] == \
            sorted([(storage["custom_fields"]["ib_port_guids"][0], storage["name"]), (STORAGE_GUID, None)])
    assert ib.model_errors(model) == [] and ib.conf_errors(ib.outputs(model)["conf"]) == []
    # Every problem at once: an unknown tenant, a tenant without P_Key, an unknown device, a device with a bad GUID.
    nb.update("dcim/devices", [{"id": storage["id"], "custom_fields": {"ib_port_guids": ["0xnothex"]}}])
    with pytest.raises(ib.IbPartitionError) as exc:
        netbox_ib.read(nb, ["acme", "nosuch", "initech"], [storage["name"], "nosuch-device"])
    text = "\n".join(exc.value.errors)
    for expected in ("'nosuch' is not a NetBox tenant", "'initech' has no ib_pkey",
                     f"device '{storage['name']}': ib_port_guids ['0xnothex']", "'nosuch-device' is neither"):
        assert expected in text, text


def play(tmp_path, *flags, **extra):
    variables = {"ib_partition_hosts": "localhost", "ib_partition_conf_path": str(tmp_path / "opensm/partitions.conf"),
                 "ib_partition_ufm_payload_path": str(tmp_path / "opensm/ufm-pkeys.json"),
                 "ib_partition_opensm_pid_file": str(tmp_path / "opensm.pid"), **extra}
    proc = ansible_playbook("playbooks/ib_partition.yml", "-e", json.dumps(variables), *flags)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return recap(proc)


def test_role_check_apply_reapply_and_removal(nb, tmp_path, restore_fleet_after):
    pkeys = allocate(nb, "acme", "globex", "initech")
    conf, ufm = tmp_path / "opensm/partitions.conf", tmp_path / "opensm/ufm-pkeys.json"
    assert play(tmp_path, "--check", "--diff")["changed"] > 0
    assert not conf.exists() and not ufm.exists()  # check mode wrote nothing
    assert play(tmp_path)["changed"] > 0
    before, before_ufm = conf.read_text(), json.loads(ufm.read_text())
    assert ib.conf_errors(before) == [] and ib.ufm_errors(before_ufm) == []
    assert [p["name"] for p in ib.model_from_conf(before)["partitions"]] == \
        [t for t, _ in sorted(pkeys.items(), key=lambda kv: kv[1])]
    assert play(tmp_path)["changed"] == 0
    assert play(tmp_path, "--check")["changed"] == 0

    tn.absent(nb, "globex", POOL)  # globex releases its networks, its P_Key with them
    assert play(tmp_path)["changed"] == 1
    after = conf.read_text()
    blocks = before.split("\n\n")
    # P_Keys are drawn at random: when globex's is the highest its block was the last, newline and all
    kept = "\n\n".join(b for b in blocks if not b.startswith("# tenant globex"))
    assert after.rstrip("\n") == kept.rstrip("\n"), after
    assert json.loads(ufm.read_text()) == [r for r in before_ufm if r["body"]["pkey"] != pkeys["globex"]]
