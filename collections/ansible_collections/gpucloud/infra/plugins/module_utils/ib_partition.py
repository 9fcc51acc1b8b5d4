# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""InfiniBand partitions: one partition per tenant (its P_Key), rendered as OpenSM's partitions.conf and as
the equivalent UFM REST requests, and both validated.

The partition model (MODEL) is what the rest works from:
  {"default": {"ipoib": true},
   "partitions": [{"name": "acme", "pkey": "0x0101", "ipoib": true, "index0": false, [mtu, rate, sl,]
                   "members": [{"guid": "0x1070fd0300000001", "membership": "full", "device": "gpu-..."}]}]}

There is no InfiniBand fabric and no subnet manager here to load the file, so the stand-in for "OpenSM accepts
it" is offline validation: parse() implements the partition-config grammar of OpenSM's documentation
(doc/partition-config.txt, "OpenSM Partition configuration") and conf_errors() adds the rules an isolated
multi-tenant fabric needs on top, every error naming its line. The UFM side is validated against a JSON schema
of UFM Enterprise's PKey GUIDs REST API (POST /ufmRest/resources/pkeys/add creates a P_Key with its QoS,
POST /ufmRest/resources/pkeys adds GUIDs with per-GUID "memberships").

Stricter than OpenSM, on purpose (each is a silent surprise in OpenSM):
  * a PKey must be given (OpenSM would invent one) and lie in 0x0001-0x7fff; 0x7fff is only the Default
    partition's; the membership bit (0x8000) is not part of the key;
  * port GUIDs are 0x plus 16 hex digits (OpenSM also takes decimal and short hex);
  * a membership other than full/limited/both is an error (OpenSM takes "limi" as limited);
  * one name per PKey and one PKey per name (OpenSM merges repeated PKeys under the first name);
  * the Default partition must exist with SELF=full and must not make ALL full (that would join every port to
    every other); a port that is a full member of one partition may not be in another, non-Default one (a tenant
    server in a second tenant's partition bridges the two).
"""

from __future__ import annotations

import bisect
import copy
import ipaddress
import json
import os
import re
import tempfile

from ansible_collections.gpucloud.infra.plugins.module_utils.fabric_schema import errors as schema_errors

DEFAULT_NAME = "Default"
DEFAULT_PKEY = 0x7FFF
GUID_RE = re.compile(r"^0x[0-9a-fA-F]{16}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MEMBERSHIPS = ("full", "limited", "both")
KEYWORDS = ("ALL", "ALL_CAS", "ALL_SWITCHES", "ALL_ROUTERS", "SELF")
# UFM documents 4096 characters as the longest line of partitions.conf; render() puts one GUID per line.
MAX_LINE = 4096
# IBTA encodings (OpenSM takes the code, not the value): MTU 1..5 = 256..4096 bytes; static rate codes in Gb/s.
MTU_BYTES = {1: 256, 2: 512, 3: 1024, 4: 2048, 5: 4096}
RATE_GBPS = {2: 2.5, 3: 10, 4: 30, 5: 5, 6: 20, 7: 40, 8: 60, 9: 80, 10: 120, 11: 14, 12: 56, 13: 112, 14: 168,
             15: 25, 16: 100, 17: 200, 18: 300, 19: 28, 20: 50, 21: 400, 22: 600}
SCOPES = {2: "link-local", 5: "site-local", 8: "organization-local", 14: "global"}
# Multicast group flags (ipoib_bc_flags of the definition, or after an mgid= in the member list): allowed range.
MGROUP_FLAGS = {"rate": (2, 22), "mtu": (1, 5), "sl": (0, 15), "scope": (1, 15), "qkey": (0, 0xFFFFFFFF),
                "tclass": (0, 255), "flowlabel": (0, 0xFFFFF)}
FLAG_ALIASES = {"q_key": "qkey"}
UFM_ADD = "/ufmRest/resources/pkeys/add"
UFM_GUIDS = "/ufmRest/resources/pkeys"

PKEY_TEXT = {"type": "string", "pattern": r"^0x[0-9a-fA-F]{1,4}$"}
MEMBER = {"type": "object", "additionalProperties": False, "required": ["guid", "membership"],
          "properties": {"guid": {"type": "string", "pattern": GUID_RE.pattern},
                         "membership": {"enum": list(MEMBERSHIPS)},
                         "device": {"type": "string"}}}
QOS = {"mtu": {"type": "integer", "minimum": 1, "maximum": 5},
       "rate": {"type": "integer", "enum": sorted(RATE_GBPS)},
       "sl": {"type": "integer", "minimum": 0, "maximum": 15}}
PARTITION = {"type": "object", "additionalProperties": False, "required": ["name", "pkey", "members"],
             "properties": {"name": {"type": "string", "pattern": NAME_RE.pattern, "maxLength": 64},
                            "pkey": PKEY_TEXT, "tenant": {"type": "string"},
                            "ipoib": {"type": "boolean"}, "index0": {"type": "boolean"}, **QOS,
                            "members": {"type": "array", "items": MEMBER}}}
MODEL = {"type": "object", "additionalProperties": False, "required": ["partitions"],
         "properties": {"default": {"type": "object", "additionalProperties": False,
                                    "properties": {"ipoib": {"type": "boolean"}, **QOS}},
                        "partitions": {"type": "array", "items": PARTITION}}}

# UFM Enterprise REST API, "PKey GUIDs": pkey a hex string strictly between 0x0 and 0x7fff; GUIDs hex strings of
# 16-20 characters; memberships one per GUID (it conflicts with the single "membership").
UFM_PKEY = {"type": "string", "pattern": r"^0x(?!0+$)(?![7][fF]{3}$)[0-7]?[0-9a-fA-F]{1,3}$"}
UFM_ADD_BODY = {"type": "object", "additionalProperties": False, "required": ["pkey"],
                "properties": {"pkey": UFM_PKEY, "index0": {"type": "boolean"}, "ip_over_ib": {"type": "boolean"},
                               "mtu_limit": {"type": "integer", "minimum": 1, "maximum": 5},
                               "service_level": {"type": "integer", "minimum": 0, "maximum": 15},
                               "rate_limit": {"type": "number", "enum": sorted(RATE_GBPS.values())}}}
UFM_GUIDS_BODY = {"type": "object", "additionalProperties": False, "required": ["pkey", "guids"],
                  "not": {"required": ["membership", "memberships"]},
                  "properties": {"pkey": UFM_PKEY,
                                 "guids": {"type": "array", "minItems": 1, "uniqueItems": True,
                                           "items": {"type": "string", "pattern": r"^[0-9a-fA-F]{16,20}$"}},
                                 "membership": {"enum": ["full", "limited"]},
                                 "memberships": {"type": "array", "items": {"enum": ["full", "limited"]}},
                                 "index0": {"type": "boolean"}, "ip_over_ib": {"type": "boolean"}}}
UFM_PAYLOAD = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": False, "required": ["method", "path", "body"],
              "properties": {"method": {"const": "POST"}, "path": {"enum": [UFM_ADD, UFM_GUIDS]},
                             "body": {"type": "object"}},
              "allOf": [{"if": {"properties": {"path": {"const": UFM_ADD}}},
                         "then": {"properties": {"body": UFM_ADD_BODY}}},
                        {"if": {"properties": {"path": {"const": UFM_GUIDS}}},
                         "then": {"properties": {"body": UFM_GUIDS_BODY}}}]}}


class IbPartitionError(Exception):
    """Invalid input or output; errors lists every problem, str() says how many and what."""

    def __init__(self, what: str, errors: list[str]):
        super().__init__(f"{len(errors)} error(s) in {what}: " + "; ".join(errors))
        self.errors = errors


# -- the model ----------------------------------------------------------------------------------------------
def pkey_text(value: int) -> str:
    return f"0x{value:04x}"


def build(tenants: list[dict], limited: list[dict] | None = None, ipoib: bool = True, index0: bool = False,
          qos: dict | None = None, default_ipoib: bool = True) -> dict:
    """The partition model: per tenant {"tenant", "pkey", "members": [{"guid", "device"}]} a partition with the
    tenant's servers as full members and `limited` ({"guid", "device"}, e.g. storage or SM nodes) as limited
    members of every tenant partition."""
    qos = {k: v for k, v in (qos or {}).items() if v}  # 0 / None: OpenSM's default
    partitions = []
    for tenant in sorted(tenants, key=lambda t: int(str(t["pkey"]), 16)):
        members = [{"guid": m["guid"].lower(), "membership": "full", **_device(m)} for m in tenant["members"]]
        members += [{"guid": m["guid"].lower(), "membership": "limited", **_device(m)} for m in limited or []]
        partitions.append({"name": tenant["tenant"], "tenant": tenant["tenant"],
                           "pkey": pkey_text(int(str(tenant["pkey"]), 16)), "ipoib": ipoib, "index0": index0,
                           **qos, "members": sorted(members, key=_member_order)})
    return {"default": {"ipoib": default_ipoib}, "partitions": partitions}


def _device(member: dict) -> dict:
    return {"device": member["device"]} if member.get("device") else {}


def _member_order(member: dict):
    return ("full", "both", "limited").index(member["membership"]), member["guid"].lower()


def model_errors(model) -> list[str]:
    """Every problem of a partition model: the schema's, and (on the parts the schema passes) what a schema cannot
    say: unique names and P_Keys, the P_Key range, GUIDs listed twice, ports bridging two partitions."""
    found = schema_errors(model, MODEL)
    if not isinstance(model, dict) or not isinstance(model.get("partitions"), list):
        return found
    names, pkeys, places = {}, {}, {}
    for i, part in enumerate(model["partitions"]):
        if not isinstance(part, dict):
            continue
        where = f"partitions[{i}]"
        pkey = int(part["pkey"], 16) if re.match(PKEY_TEXT["pattern"], str(part.get("pkey"))) else None
        if pkey is not None and not 0x0001 <= pkey <= 0x7FFE:
            found.append(f"{where}.pkey: {part['pkey']} is outside 0x0001-0x7ffe (0x7fff is the Default partition's, "
                         "0x8000 is the membership bit)")
        if part.get("name") == DEFAULT_NAME:
            found.append(f"{where}.name: '{DEFAULT_NAME}' is the default partition's name, set by 'default'")
        for seen, key, label in ((names, part.get("name"), "name"), (pkeys, pkey, "pkey")):
            if key is not None and key in seen:
                found.append(f"{where}.{label}: {part[label]} is also partitions[{seen[key]}]'s")
            seen.setdefault(key, i)
        guids: dict[str, int] = {}
        for j, member in enumerate(part.get("members") if isinstance(part.get("members"), list) else []):
            if not isinstance(member, dict) or not GUID_RE.match(str(member.get("guid"))):
                continue
            guid = member["guid"].lower()
            if guid in guids:
                found.append(f"{where}.members[{j}].guid: {member['guid']} is listed twice "
                             f"(also members[{guids[guid]}])")
                continue
            guids[guid] = j
            places.setdefault(guid, []).append((f"{where}.members[{j}]", part.get("name"), member.get("membership")))
    return found + _bridges(places)


def _bridges(places: dict[str, list[tuple[str, str, str]]]) -> list[str]:
    """A port that is a full member of one partition and a member of another joins the two: isolation gone."""
    found = []
    for guid, where in sorted(places.items()):
        full = next((w for w in where if w[2] in ("full", "both")), None)
        others = [w for w in where if w is not full]
        if full and others:
            listed = ", ".join(f"{name} ({membership})" for _, name, membership in others)
            found.append(f"{full[0]}.guid: {guid} is a full member of {full[1]} and also in {listed}; "
                         "a port may be a full member of one partition only, and then of no other")
    return found


# -- partitions.conf ----------------------------------------------------------------------------------------
HEADER = ("# OpenSM partitions.conf written by gpucloud.infra.ib_partitions from NetBox: one partition per tenant\n"
          "# (P_Key = the tenant's ib_pkey), the tenant's servers full members. Local edits are overwritten.\n")


def render(model: dict) -> str:
    """partitions.conf text for a valid model; stable ordering, so equal models give equal files."""
    default = model.get("default", {})
    out = [HEADER, _definition(DEFAULT_NAME, DEFAULT_PKEY, default) + " : ALL=limited, SELF=full ;\n"]
    for part in sorted(model["partitions"], key=lambda p: int(p["pkey"], 16)):
        head = _definition(part["name"], int(part["pkey"], 16), part)
        out.append(f"\n# tenant {part.get('tenant', part['name'])}\n")
        if not part["members"]:
            out.append(f"{head} : ;\n")
            continue
        out.append(f"{head} :\n")
        members = sorted(part["members"], key=_member_order)
        for n, member in enumerate(members):
            end = " ;" if n == len(members) - 1 else ","
            note = f"  # {member['device']}" if member.get("device") else ""
            out.append(f"    {member['guid'].lower()}={member['membership']}{end}{note}\n")
    return "".join(out)


def _definition(name: str, pkey: int, opts: dict) -> str:
    flags = ["ipoib"] if opts.get("ipoib") else []
    flags += ["indx0"] if opts.get("index0") else []
    flags += [f"{key}={opts[key]}" for key in ("mtu", "rate", "sl") if opts.get(key) is not None]
    return ", ".join([f"{name}={pkey_text(pkey)}", *flags])


class _Text:
    """The file with comments blanked out (offsets kept), to map an offset back to its line."""

    def __init__(self, text: str):
        self.text = re.sub(r"#[^\n]*", lambda m: " " * len(m.group(0)), text)
        self.newlines = [i for i, c in enumerate(self.text) if c == "\n"]

    def line(self, offset: int) -> int:
        return bisect.bisect_left(self.newlines, offset) + 1


def _split(src: _Text, start: int, end: int, seps: str) -> list[tuple[str, int]]:
    """Items of src.text[start:end] split at any of seps, each stripped, with the line it starts on."""
    items, begin = [], start
    for pos in range(start, end + 1):
        if pos == end or src.text[pos] in seps:
            raw = src.text[begin:pos]
            lead = len(raw) - len(raw.lstrip())
            items.append((raw.strip(), src.line(begin + lead) if raw.strip() else src.line(begin)))
            begin = pos + 1
    return items


def parse(text: str) -> tuple[list[dict], list[str]]:
    """Partition statements and grammar errors ("line N: ...").

    A statement is `Definition : Properties ;` and may span lines; Definition is `Name=PKey[,flag[=value]]...`,
    Properties a comma-separated list of port specifiers `GUID|ALL|ALL_CAS|ALL_SWITCHES|ALL_ROUTERS|SELF
    [=full|limited|both]` and multicast groups `mgid=<IPv6 multicast GID>[,mgroup_flag=value]...`."""
    src, errors, parts = _Text(text), [], []
    for n, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE:
            errors.append(f"line {n}: {len(line)} characters, longer than the {MAX_LINE} a partitions.conf line holds")
    start = 0
    for semi in [i for i, c in enumerate(src.text) if c == ";"] + [None]:
        end = len(src.text) if semi is None else semi
        body = src.text[start:end]
        first = start + len(body) - len(body.lstrip())
        colon = src.text.find(":", start, end)
        if semi is None:
            if body.strip():
                errors.append(f"line {src.line(first)}: '{_short(body)}' is not terminated by ';'")
                if colon >= 0:  # its other errors too, all at once
                    _parse_properties(src, colon + 1, end, _parse_definition(src, first, colon, errors)["defmember"],
                                      errors)
            break
        if not body.strip():
            errors.append(f"line {src.line(semi)}: empty statement (a ';' with no partition before it)")
        elif colon < 0:
            errors.append(f"line {src.line(first)}: '{_short(body)}' has no ':' between the partition definition "
                          "and its members")
        else:
            part = _parse_definition(src, first, colon, errors)
            part["members"], part["mgroups"] = _parse_properties(src, colon + 1, end, part["defmember"], errors)
            parts.append(part)
        start = semi + 1
    return parts, errors


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_definition(src: _Text, start: int, colon: int, errors: list[str]) -> dict:
    items = _split(src, start, colon, ",")
    (head, line), flags = items[0], items[1:]
    part = {"line": line, "name": None, "pkey": None, "flags": {}, "defmember": "limited", "seen": set()}
    name, eq, pkey = head.partition("=")
    name, pkey = name.strip(), pkey.strip()
    if not name:
        errors.append(f"line {line}: partition has no name (OpenSM would log an empty one)")
    elif not NAME_RE.match(name):
        errors.append(f"line {line}: partition name '{name}' may hold only letters, digits, '_', '.' and '-'")
    part["name"] = name or None
    if not eq or not pkey:
        errors.append(f"line {line}: partition '{name}' has no PKey ('{name}=0x....'); "
                      "OpenSM would generate one, different on every start")
    else:
        part["pkey"] = _pkey(pkey, name, line, errors)
    for text, fline in flags:
        _parse_flag(text, fline, part, errors)
    return part


def _pkey(text: str, name: str, line: int, errors: list[str]) -> int | None:
    if not re.match(r"^0x[0-9a-fA-F]{1,4}$", text):
        errors.append(f"line {line}: PKey '{text}' of '{name}' is not a hex number 0x0001-0x7fff")
        return None
    value = int(text, 16)
    if value & 0x8000:
        errors.append(f"line {line}: PKey {text} of '{name}' has the membership bit 0x8000 set; "
                      f"give the 15-bit key {pkey_text(value & 0x7FFF)}")
        return None
    if value == 0:
        errors.append(f"line {line}: PKey 0x0000 of '{name}' is invalid (0x0001-0x7fff)")
        return None
    return value


def _parse_flag(text: str, line: int, part: dict, errors: list[str]) -> None:
    key, eq, value = (s.strip() for s in text.partition("="))
    low = FLAG_ALIASES.get(key.lower(), key.lower())
    if key and low in part["seen"]:
        errors.append(f"line {line}: flag '{key}' given twice for '{part['name']}'")
        return
    part["seen"].add(low)
    if not key:
        errors.append(f"line {line}: empty flag in the definition of '{part['name']}' (two commas in a row?)")
    elif low in ("ipoib", "indx0"):
        if eq:
            errors.append(f"line {line}: flag '{key}' of '{part['name']}' takes no value")
        part["flags"][low] = True
    elif low == "defmember":
        if value not in MEMBERSHIPS:
            errors.append(f"line {line}: defmember '{value}' of '{part['name']}' is not full, limited or both")
        else:
            part["defmember"] = value
    elif low in MGROUP_FLAGS:
        number = _flag_value(low, key, value, line, part["name"], errors)
        if number is not None:
            part["flags"][low] = number
    else:
        errors.append(f"line {line}: unknown flag '{key}' in the definition of '{part['name']}' (known: ipoib, "
                      f"indx0, defmember, {', '.join(MGROUP_FLAGS)})")


def _flag_value(low: str, key: str, value: str, line: int, where, errors: list[str]) -> int | None:
    lo, hi = MGROUP_FLAGS[low]
    try:
        number = int(value, 0)
    except ValueError:
        errors.append(f"line {line}: {key}='{value}' of '{where}' is not a number")
        return None
    if not lo <= number <= hi or (low == "rate" and number not in RATE_GBPS) or \
            (low == "scope" and number not in SCOPES):
        allowed = {"mtu": "1-5 (IBTA code: 4=2048, 5=4096)", "rate": "an IBTA rate code 2-22 (3=10G, 16=100G)",
                   "scope": "2, 5, 8 or 14 (link, site, organization, global)"}.get(low, f"{lo}-{hi}")
        errors.append(f"line {line}: {key}={value} of '{where}' is outside {allowed}")
        return None
    return number


def _parse_properties(src: _Text, start: int, end: int, defmember: str, errors: list[str]):
    members, mgroups, group = [], [], None
    items = _split(src, start, end, ",")
    for text, line in items:
        if not text:
            if len(items) > 1:  # ",," or a trailing comma; an empty list (just ";") is fine
                errors.append(f"line {line}: empty member (two commas in a row, or a comma before ';')")
            continue
        # A multicast group ends at its line's end, so items split at line breaks too.
        for k, piece in enumerate(text.split("\n")):
            if not piece.strip():
                continue
            key, eq, value = (s.strip() for s in piece.partition("="))
            low = FLAG_ALIASES.get(key.lower(), key.lower())
            if low == "mgid":
                group = {"line": line + k, "mgid": value, "flags": {}}
                mgroups.append(group)
                _check_mgid(value, line + k, errors)
            elif group is not None and low in MGROUP_FLAGS and eq:
                number = _flag_value(low, key, value, line + k, f"mgid={group['mgid']}", errors)
                if number is not None:
                    group["flags"][low] = number
            else:
                group = None
                member = _member(key, eq, value, line + k, defmember, errors)
                if member:
                    members.append(member)
    return members, mgroups


def _check_mgid(value: str, line: int, errors: list[str]) -> None:
    try:
        ok = ipaddress.IPv6Address(value).is_multicast
    except ValueError:
        ok = False
    if not ok:
        errors.append(f"line {line}: mgid '{value}' is not an IPv6 multicast GID (ff..::..)")


def _member(key: str, eq: str, value: str, line: int, defmember: str, errors: list[str]) -> dict | None:
    if eq and value not in MEMBERSHIPS:
        errors.append(f"line {line}: membership '{value}' of {key} is not full, limited or both "
                      "(OpenSM would quietly make it limited)")
        return None
    if key in KEYWORDS:
        return {"port": key, "membership": value if eq else defmember, "line": line}
    if not GUID_RE.match(key):
        errors.append(f"line {line}: port '{key}' is neither a GUID (0x and 16 hex digits) nor one of "
                      f"{', '.join(KEYWORDS)}")
        return None
    return {"port": key.lower(), "membership": value if eq else defmember, "line": line}


def conf_errors(text: str) -> list[str]:
    """Grammar errors plus the rules of the file as a whole (unique names and PKeys, the Default partition,
    no port bridging two partitions, no port listed twice)."""
    parts, errors = parse(text)
    errors += _unique(parts) + _default_errors(parts) + _member_errors(parts)
    return sorted(set(errors), key=_line_key)


def _line_key(error: str):
    match = re.match(r"line (\d+)", error)
    return (int(match.group(1)) if match else 0, error)


def _unique(parts: list[dict]) -> list[str]:
    errors, by_pkey, by_name = [], {}, {}
    for part in parts:
        if part["pkey"] is None or part["name"] is None:
            continue
        first = by_pkey.setdefault(part["pkey"], part)
        if first["name"] != part["name"]:
            errors.append(f"line {part['line']}: PKey {pkey_text(part['pkey'])} is '{first['name']}' on line "
                          f"{first['line']} and '{part['name']}' here (OpenSM would merge them under the first name)")
        first = by_name.setdefault(part["name"], part)
        if first["pkey"] != part["pkey"]:
            errors.append(f"line {part['line']}: partition '{part['name']}' has PKey {pkey_text(first['pkey'])} "
                          f"on line {first['line']} and {pkey_text(part['pkey'])} here")
        if (part["pkey"] == DEFAULT_PKEY) != (part["name"] == DEFAULT_NAME):
            errors.append(f"line {part['line']}: PKey 0x7fff belongs to the partition named '{DEFAULT_NAME}' "
                          f"(here '{part['name']}'={pkey_text(part['pkey'])})")
    return errors


def _default_errors(parts: list[dict]) -> list[str]:
    default = [p for p in parts if p["pkey"] == DEFAULT_PKEY]
    if not default:
        return ["line 1: no 'Default=0x7fff' partition; write 'Default=0x7fff : ALL=limited, SELF=full ;' so the "
                "file says what OpenSM would otherwise assume"]
    members = [m for p in default for m in p["members"]]
    errors = [f"line {m['line']}: ALL=full in the Default partition makes every port a full member of it, so every "
              "tenant reaches every other; use ALL=limited" for m in members
              if m["port"] == "ALL" and m["membership"] in ("full", "both")]
    if not any(m["port"] == "SELF" and m["membership"] in ("full", "both") for m in members):
        errors.append(f"line {default[0]['line']}: the Default partition lacks SELF=full (the subnet manager's own "
                      "port must be a full member)")
    return errors


def _member_errors(parts: list[dict]) -> list[str]:
    errors, places = [], {}
    for part in parts:
        seen = {}
        for member in part["members"]:
            if member["port"] in seen:
                errors.append(f"line {member['line']}: {member['port']} is listed twice in '{part['name']}' "
                              f"(also line {seen[member['port']]})")
            seen.setdefault(member["port"], member["line"])
            if part["pkey"] != DEFAULT_PKEY and member["port"] not in KEYWORDS:
                places.setdefault(member["port"], []).append((f"line {member['line']}", part["name"],
                                                              member["membership"]))
    merged = {}
    for guid, where in places.items():  # one place per partition: split definitions of one PKey repeat a name
        merged[guid] = list({name: (w, name, m) for w, name, m in where}.values())
    return errors + [e.replace(".guid:", ":", 1) for e in _bridges(merged)]


def model_from_conf(text: str) -> dict:
    """The partition model a valid partitions.conf describes (device names are not in the file)."""
    parts, errors = parse(text)
    if errors:
        raise IbPartitionError("partitions.conf", errors)
    model, merged = {"default": {}, "partitions": []}, {}
    for part in parts:
        flags = part["flags"]
        opts = {"ipoib": bool(flags.get("ipoib"))}
        if part["pkey"] == DEFAULT_PKEY:
            model["default"] = {**opts, **{k: flags[k] for k in QOS if k in flags}}
            continue
        entry = merged.get(part["pkey"])
        if entry is None:
            entry = merged[part["pkey"]] = {"name": part["name"], "pkey": pkey_text(part["pkey"]), **opts,
                                            "index0": bool(flags.get("indx0")),
                                            **{k: flags[k] for k in QOS if k in flags}, "members": []}
            model["partitions"].append(entry)
        entry["members"] += [{"guid": m["port"], "membership": m["membership"]} for m in part["members"]]
    for entry in model["partitions"]:
        entry["members"].sort(key=_member_order)
    return model


# -- UFM ----------------------------------------------------------------------------------------------------
def ufm_payload(model: dict) -> list[dict]:
    """The UFM REST requests that set up the same partitions: per P_Key one POST /ufmRest/resources/pkeys/add
    (creates it with its QoS, also when it has no members yet) and, if it has members, one
    POST /ufmRest/resources/pkeys with every GUID and its membership. UFM knows full and limited only: a port
    that is "both" holds the full key and so communicates as a full member."""
    requests = []
    for part in sorted(model["partitions"], key=lambda p: int(p["pkey"], 16)):
        pkey = pkey_text(int(part["pkey"], 16))
        common = {"pkey": pkey, "index0": bool(part.get("index0")), "ip_over_ib": bool(part.get("ipoib"))}
        qos = {"mtu_limit": part.get("mtu"), "service_level": part.get("sl"),
               "rate_limit": RATE_GBPS.get(part.get("rate"))}
        requests.append({"method": "POST", "path": UFM_ADD,
                         "body": {**common, **{k: v for k, v in qos.items() if v is not None}}})
        members = sorted(part["members"], key=_member_order)
        if members:
            requests.append({"method": "POST", "path": UFM_GUIDS, "body": {
                **common, "guids": [m["guid"].lower()[2:] for m in members],
                "memberships": ["limited" if m["membership"] == "limited" else "full" for m in members]}})
    return requests


def ufm_errors(payload) -> list[str]:
    found = schema_errors(payload, UFM_PAYLOAD)
    if found or not isinstance(payload, list):
        return found
    for i, request in enumerate(payload):
        body = request["body"]
        if "memberships" in body and len(body["memberships"]) != len(body.get("guids", [])):
            found.append(f"[{i}].body.memberships: {len(body['memberships'])} entries for "
                         f"{len(body.get('guids', []))} guids; UFM pairs them by index")
    return found


def ufm_text(payload: list[dict]) -> str:
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


# -- the whole output ---------------------------------------------------------------------------------------
def outputs(model) -> dict:
    """partitions.conf and UFM payload text for a model, each validated; IbPartitionError lists every error."""
    errors = model_errors(model)
    if errors:
        raise IbPartitionError("the partition model", errors)
    model = copy.deepcopy(model)
    conf, payload = render(model), ufm_payload(model)
    errors = [f"partitions.conf {e}" for e in conf_errors(conf)] + [f"UFM payload {e}" for e in ufm_errors(payload)]
    if errors:  # the renderers' own bug, never the input's: said so, with every error
        raise IbPartitionError("the rendered output (a bug in the renderer)", errors)
    return {"conf": conf, "ufm": ufm_text(payload), "payload": payload}


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_text(path: str, text: str, mode: int) -> None:
    """Atomic: a reader (OpenSM re-reading on HUP) sees the old file or the new one, never half of it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ib_partition.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
