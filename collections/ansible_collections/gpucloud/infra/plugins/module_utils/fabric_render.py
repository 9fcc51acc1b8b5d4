# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Renderers of the fabric's structured config (fabric_config): a platform is a directory of Jinja
templates, fabric_templates/<platform>/<file>.j2, one per file it produces. Templates only loop and
print; every decision is already in the structured config. A new platform is a new directory (and,
if its output can be checked offline, an entry in OUTPUT_CHECKS) and nothing else.

Output checks, all reporting every problem at once:
  sonic  config_db.json parsed (duplicate keys refused) and validated against fabric_schema.SONIC
  eos    a structural check: 3-space indentation hierarchy plus an allow-list grammar of the commands
         the EOS templates emit, with number ranges (no EOS parser exists offline)
  linux  needs ifupdown2 and FRR binaries, so the tests run `ifquery -o json -i` and `vtysh -C -f`
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2

from ansible_collections.gpucloud.infra.plugins.module_utils import fabric_schema

TEMPLATE_DIR = Path(__file__).resolve().parent / "fabric_templates"


class RenderError(Exception):
    pass


def platforms() -> list[str]:
    return sorted(p.name for p in TEMPLATE_DIR.iterdir() if p.is_dir() and any(p.glob("*.j2")))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def _no_duplicate_keys(pairs: list[tuple]) -> dict:
    keys = [k for k, _v in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"duplicate keys {', '.join(repeated)}")
    return dict(pairs)


def _canonical_json(text: str) -> str:
    """Rendered JSON, re-indented with sorted keys so diffs and golden files are stable."""
    return json.dumps(json.loads(text, object_pairs_hook=_no_duplicate_keys), indent=4, sort_keys=True) + "\n"


FORMATTERS = {".json": _canonical_json}


def render(switch: dict, platform: str | None = None) -> dict[str, str]:
    """{file name: text} for one switch's structured config, with its own platform unless given."""
    platform = platform or switch["platform"]
    if platform not in platforms():
        raise RenderError(f"no renderer for platform {platform!r} (known: {', '.join(platforms())})")
    env, files = _environment(), {}
    for template in sorted((TEMPLATE_DIR / platform).glob("*.j2")):
        name = template.name[:-3]
        text = env.get_template(f"{platform}/{template.name}").render(**switch)
        formatter = FORMATTERS.get(Path(name).suffix)
        try:
            files[name] = formatter(text) if formatter else text
        except ValueError as exc:
            raise RenderError(f"{platform}/{template.name} rendered invalid {Path(name).suffix} for "
                              f"{switch.get('hostname')}: {exc}") from exc
    return files


def render_all(config: dict, platform: str | None = None) -> dict[str, dict[str, str]]:
    return {name: render(config[name], platform) for name in sorted(config)}


def sonic_errors(files: dict[str, str]) -> list[str]:
    try:
        data = json.loads(files["config_db.json"], object_pairs_hook=_no_duplicate_keys)
    except (KeyError, ValueError) as exc:
        return [f"config_db.json: {exc}"]
    return fabric_schema.errors(data, fabric_schema.SONIC, root="config_db.json")


_IP = fabric_schema.IPV4
_PFX = rf"{_IP}/(?P<len>[0-9]+)"
_RT = rf"([0-9]+|{_IP}):[0-9]+"
_MAC = r"[0-9a-f]{2}(:[0-9a-f]{2}){5}"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_IF = r"Ethernet[0-9]+(/[0-9]+)*"
RANGES = {"vid": (1, 4094), "vni": (1, 16777215), "asn": (1, 4294967295), "len": (0, 32), "port": (1, 65535)}

# context -> [(line regex, context of its children or None)]; "" is the top level.
EOS_GRAMMAR = {
    "": [(r"hostname " + _NAME, None), (r"service routing protocols model multi-agent", None),
         (r"vlan (?P<vid>[0-9]+)", "vlan"), (r"vrf instance " + _NAME, None), (r"ip routing", None),
         (r"ip routing vrf " + _NAME, None), (r"ip virtual-router mac-address " + _MAC, None),
         (r"interface " + _IF, "ethernet"), (r"interface Loopback[0-9]+", "loopback"),
         (r"interface Vlan(?P<vid>[0-9]+)", "svi"), (r"interface Vxlan1", "vxlan"),
         (r"router bgp (?P<asn>[0-9]+)", "bgp"), (r"end", None)],
    "vlan": [(r"name [A-Za-z0-9_.-]+", None)],
    "ethernet": [(r"description .+", None), (r"switchport mode access", None),
                 (r"switchport access vlan (?P<vid>[0-9]+)", None), (r"no switchport", None),
                 (r"ip address " + _PFX, None)],
    "loopback": [(r"ip address " + _PFX + "( secondary)?", None)],
    "svi": [(r"vrf " + _NAME, None), (r"ip address virtual " + _PFX, None)],
    "vxlan": [(r"vxlan source-interface Loopback[0-9]+", None), (r"vxlan udp-port (?P<port>[0-9]+)", None),
              (r"vxlan vlan (?P<vid>[0-9]+) vni (?P<vni>[0-9]+)", None),
              (r"vxlan vrf " + _NAME + r" vni (?P<vni>[0-9]+)", None)],
    "bgp": [(r"router-id " + _IP, None), (r"no bgp default ipv4-unicast", None),
            (rf"neighbor {_IP} remote-as (?P<asn>[0-9]+)", None), (rf"neighbor {_IP} send-community extended", None),
            (r"vlan (?P<vid>[0-9]+)", "bgp-vlan"), (r"address-family (evpn|ipv4)", "bgp-af"),
            (r"vrf " + _NAME, "bgp-vrf")],
    "bgp-vlan": [(r"rd " + _RT, None), (rf"route-target (both|import|export) {_RT}", None),
                 (r"redistribute learned", None)],
    "bgp-af": [(rf"neighbor {_IP} activate", None), (r"network " + _PFX, None)],
    "bgp-vrf": [(r"rd " + _RT, None), (rf"route-target (import|export) evpn {_RT}", None),
                (r"router-id " + _IP, None), (r"redistribute connected", None)],
}
EOS_INDENT = 3


def _eos_match(context: str, command: str) -> tuple[bool, str | None, list[str]]:
    """(allowed, child context, range problems) of one command under a context."""
    for pattern, child in EOS_GRAMMAR.get(context, []):
        match = re.fullmatch(pattern, command)
        if match:
            problems = [f"{name} {value} is outside {RANGES[name][0]}..{RANGES[name][1]}"
                        for name, value in match.groupdict().items()
                        if value is not None and not RANGES[name][0] <= int(value) <= RANGES[name][1]]
            return True, child, problems
    return False, None, []


def eos_errors(files: dict[str, str]) -> list[str]:
    """Every structural problem of a rendered EOS config: indentation, unknown commands, ranges."""
    found, stack = [], [("", -EOS_INDENT)]  # (context, indent) of the open blocks
    for number, line in enumerate(files.get("startup-config", "").splitlines(), 1):
        command = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        where = f"startup-config:{number}"
        if not command or command.startswith("!"):
            continue  # "!" separates blocks; it closes nothing EOS cares about
        if line != line.rstrip() or "\t" in line or indent % EOS_INDENT:
            found.append(f"{where}: bad whitespace (indent with multiples of {EOS_INDENT} spaces): {line!r}")
            continue
        while stack[-1][1] >= indent:
            stack.pop()
        context, parent_indent = stack[-1] if stack else ("", -EOS_INDENT)
        if context is None or indent != parent_indent + EOS_INDENT:
            found.append(f"{where}: {command!r} is indented under a command that takes no sub-commands")
            continue
        allowed, child, problems = _eos_match(context, command)
        if not allowed:
            place = f"in {context}" if context else "at the top level"
            found.append(f"{where}: {command!r} is not allowed {place}")
        found += [f"{where}: {problem}" for problem in problems]
        stack.append((child, indent))
    return found


OUTPUT_CHECKS = {"sonic": sonic_errors, "eos": eos_errors}


def output_errors(platform: str, files: dict[str, str]) -> list[str]:
    """Problems the platform's offline check finds in its rendered files ([] when it has no check)."""
    check = OUTPUT_CHECKS.get(platform)
    return check(files) if check else []
