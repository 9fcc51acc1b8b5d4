# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Drift between a node's effective state (node_facts) and the manifest of the image NetBox assigns it.

A finding is {field, expected, actual, severity}. Severity says what the skew costs:
  critical        the software stack differs (image, kernel, GPU packages, loaded driver): in a synchronous job
                  one node on another driver or NCCL does not run slower, it hangs the job
  warning         tuning differs (cmdline, THP, hugepages, governor, IOMMU): the node works, slower or unsafe
  not_applicable  the node cannot show the value (no cpufreq in a VM); reported, never counted as drift
"""

from __future__ import annotations

import json

from ansible_collections.gpucloud.infra.plugins.module_utils.node_facts import parse_cmdline, upstream_version

SEVERITIES = ("critical", "warning", "not_applicable")
DRIFT_SEVERITIES = ("critical", "warning")
IOMMU_ON = {"intel_iommu": "on", "amd_iommu": "on"}
MANIFEST_CF = "image_manifest"


def finding(field: str, expected, actual, severity: str) -> dict:
    return {"field": field, "expected": expected, "actual": actual, "severity": severity}


# -- manifest -------------------------------------------------------------------------------------
def validate_manifest(manifest) -> list[str]:
    """Every problem with the parts of a manifest compare() reads, all at once."""
    if not isinstance(manifest, dict):
        return [f"manifest must be a JSON object, got {type(manifest).__name__}"]
    errors = []
    for key in ("name", "version", "build_key"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            errors.append(f"manifest.{key} must be a non-empty string")
    kernel = manifest.get("kernel")
    if not isinstance(kernel, dict) or not isinstance(kernel.get("release"), str):
        errors.append("manifest.kernel.release must be a string (e.g. 6.1.0-35-amd64)")
    if not isinstance(manifest.get("cmdline", ""), str):
        errors.append("manifest.cmdline must be a string of kernel parameters")
    tuning = manifest.get("tuning", {})
    if not isinstance(tuning, dict):
        errors.append("manifest.tuning must be an object")
    elif tuning.get("hugepages") is not None:
        pages = tuning["hugepages"]
        if not isinstance(pages, dict) or not all(isinstance(pages.get(k), int) for k in ("size_kb", "count")):
            errors.append("manifest.tuning.hugepages must be {size_kb: int, count: int}")
    stack = manifest.get("gpu_stack", {})
    if not isinstance(stack, dict) or not all(isinstance(v, dict) for v in stack.values()):
        errors.append("manifest.gpu_stack must map a vendor to {release, components}")
    return errors


# -- comparison -----------------------------------------------------------------------------------
def _args(cmdline: str) -> list[tuple[str, str | None]]:
    """Kernel parameters as (name, value); the kernel treats '-' and '_' in names alike."""
    return [(name.replace("-", "_"), value) for name, value in parse_cmdline(cmdline or "")["args"]]


def _values(args, name) -> list:
    return [value for key, value in args if key == name]


def compare_cmdline(expected_line: str, actual_args: list) -> list[dict]:
    """Every parameter of the manifest present with the same value. A name given once must have that value last
    (the one the kernel honours, e.g. after a bootloader duplicated it); a name given several times
    (hugepagesz/hugepages pairs) must appear with the same values in the same order."""
    wanted = _args(expected_line)
    actual = [(str(k).replace("-", "_"), v) for k, v in actual_args]
    findings = []
    for name in dict.fromkeys(k for k, _ in wanted):
        expected, present = _values(wanted, name), _values(actual, name)
        ok = present == expected or (len(expected) == 1 and present and present[-1] == expected[0])
        if not ok:
            findings.append(finding(f"cmdline.{name}", _one(expected), _one(present) if present else None,
                                    "warning"))
    return findings


def _one(values: list):
    """A bare flag reads as true; a single value as itself; repeated ones as the list."""
    values = [True if v is None else v for v in values]
    return values[0] if len(values) == 1 else values


def _compare(findings: list, field: str, expected, actual, severity: str):
    if expected is not None and expected != actual:
        findings.append(finding(field, expected, actual, severity))


def compare_tuning(tuning: dict, facts: dict) -> list[dict]:
    findings: list[dict] = []
    _compare(findings, "thp.enabled", tuning.get("thp"), (facts.get("thp") or {}).get("enabled"), "warning")
    pages = tuning.get("hugepages")
    if pages:
        size = (facts.get("hugepages") or {}).get("sizes", {}).get(str(pages["size_kb"])) or {}
        _compare(findings, f"hugepages.{pages['size_kb']}kB", pages["count"], size.get("total"), "warning")
    governor = tuning.get("cpu_governor")
    actual = (facts.get("cpu") or {}).get("governor")
    if governor and actual is None:
        findings.append(finding("cpu.governor", governor, None, "not_applicable"))
    else:
        _compare(findings, "cpu.governor", governor, actual, "warning")
    return findings


def compare_iommu(expected_line: str, facts: dict) -> list[dict]:
    wanted = dict(_args(expected_line))
    if any(wanted.get(k) == v for k, v in IOMMU_ON.items()) and not (facts.get("iommu") or {}).get("enabled"):
        return [finding("iommu.enabled", True, False, "warning")]
    return []


def driver_matches(expected: str, actual: str | None) -> bool:
    """The loaded driver against the package's upstream version. Vendors append build numbers to one side only
    (amdgpu-dkms 6.7.0.60100 loads as 6.7.0), so a dotted prefix either way is the same driver."""
    if actual is None:
        return False
    return expected == actual or expected.startswith(actual + ".") or actual.startswith(expected + ".")


def compare_gpu_stack(stack: dict, facts: dict) -> list[dict]:
    findings: list[dict] = []
    node_stack = facts.get("gpu_stack") or {}
    node_components = node_stack.get("components") or {}
    packages = facts.get("packages") or {}
    for vendor, spec in sorted(stack.items()):
        if spec.get("release") is not None:
            actual = node_stack.get("release") if node_stack.get("vendor") in (vendor, None) else None
            _compare(findings, f"gpu_stack.{vendor}.release", spec["release"], actual, "critical")
        for name, comp in sorted((spec.get("components") or {}).items()):
            package, version = (comp or {}).get("package"), (comp or {}).get("version")
            if not package or not version:
                continue
            actual = packages.get(package) or (node_components.get(name) or {}).get("installed")
            _compare(findings, f"gpu_stack.{vendor}.{name}", f"{package} {version}",
                     f"{package} {actual}" if actual else None, "critical")
        findings += compare_driver(vendor, spec, facts)
    return findings


def compare_driver(vendor: str, spec: dict, facts: dict) -> list[dict]:
    """The driver the GPUs run, not only the one installed: a driver upgraded without a reboot still loads the
    old module, which is exactly the skew that hangs collectives."""
    driver = ((spec.get("components") or {}).get("driver") or {}).get("version")
    if not driver:
        return []
    expected = upstream_version(driver)
    tool = next((a for a in facts.get("accelerators") or [] if a.get("vendor") == vendor), {})
    actual = tool.get("driver_version")
    if driver_matches(expected, actual):
        return []
    return [finding(f"gpu.{vendor}.driver_version", expected, actual, "critical")]


def compare(manifest: dict, facts: dict) -> list[dict]:
    """Findings, most severe first; empty when the node runs its image as built."""
    image = facts.get("image") or {}
    findings = []
    _compare(findings, "image.build_key", manifest.get("build_key"), image.get("build_key"), "critical")
    _compare(findings, "kernel.release", (manifest.get("kernel") or {}).get("release"),
             (facts.get("kernel") or {}).get("release"), "critical")
    findings += compare_gpu_stack(manifest.get("gpu_stack") or {}, facts)
    findings += compare_cmdline(manifest.get("cmdline") or "", (facts.get("cmdline") or {}).get("args") or [])
    findings += compare_iommu(manifest.get("cmdline") or "", facts)
    findings += compare_tuning(manifest.get("tuning") or {}, facts)
    return sorted(findings, key=lambda f: SEVERITIES.index(f["severity"]))


def drifted(findings: list[dict], fail_on=DRIFT_SEVERITIES) -> bool:
    return any(f["severity"] in fail_on for f in findings)


def manifest_packages(manifest: dict | None) -> list[str]:
    """The packages node_facts must report for compare(): the GPU stack's."""
    names = []
    for spec in ((manifest or {}).get("gpu_stack") or {}).values():
        for comp in (spec.get("components") or {}).values():
            if isinstance(comp, dict) and comp.get("package"):
                names.append(comp["package"])
    return sorted(set(names))


# -- NetBox ---------------------------------------------------------------------------------------
def fetch_manifests(nb, slugs: list[str]) -> tuple[dict, list[str]]:
    """{slug: {id, name, manifest}} for the platforms named, in one request whatever their number; problems for a
    platform that does not exist or whose manifest is missing or invalid (manifest null then)."""
    slugs = sorted({s for s in slugs if s})
    if not slugs:
        return {}, []
    platforms = {p["slug"]: p for p in nb.list("dcim/platforms", slug=slugs)}
    out, problems = {}, []
    for slug in slugs:
        platform = platforms.get(slug)
        if platform is None:
            problems.append(f"platform {slug}: not in NetBox")
            out[slug] = {"id": None, "name": None, "manifest": None, "problem": "platform not in NetBox"}
            continue
        manifest, problem = _manifest_of(platform)
        if problem:
            problems.append(f"platform {slug}: {problem}")
        out[slug] = {"id": platform["id"], "name": platform.get("name"), "manifest": manifest, "problem": problem}
    return out, problems


def _manifest_of(platform: dict) -> tuple[dict | None, str | None]:
    value = (platform.get("custom_fields") or {}).get(MANIFEST_CF)
    if value in (None, "", {}):
        return None, f"no {MANIFEST_CF} (not an image platform, or the image was not registered)"
    if isinstance(value, str):  # a text custom field holding JSON
        try:
            value = json.loads(value)
        except ValueError as exc:
            return None, f"{MANIFEST_CF} is not valid JSON ({exc})"
    errors = validate_manifest(value)
    if errors:
        return None, f"invalid {MANIFEST_CF}: " + "; ".join(errors)
    return value, None


# -- fleet report ---------------------------------------------------------------------------------
def _fmt(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def fleet_report(nodes: dict, generated_at: str, not_checked=()) -> dict:
    """nodes: {host: {platform, image, status, findings}}; status is in_sync, drift, no_image or no_manifest.
    not_checked: hosts that left the play before the comparison (unreachable, or their facts failed)."""
    entries = {host: dict(nodes[host]) for host in sorted(nodes)}
    for host in sorted(set(not_checked) - set(entries)):
        entries[host] = {"platform": None, "image": None, "status": "not_checked", "findings": []}
    counts: dict[str, int] = {}
    for entry in entries.values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {"generated_at": generated_at, "nodes": entries, "summary": dict(sorted(counts.items())),
            "drifted_nodes": [h for h, e in entries.items() if e["status"] == "drift"],
            "unassigned_nodes": [h for h, e in entries.items() if e["status"] in ("no_image", "no_manifest")],
            "not_checked_nodes": [h for h, e in entries.items() if e["status"] == "not_checked"]}


def markdown_table(report: dict) -> str:
    lines = [f"# Node drift, {report['generated_at']}", "",
             "| node | image | status | findings |", "|---|---|---|---|"]
    for host, entry in report["nodes"].items():
        shown = [f for f in entry.get("findings") or [] if f["severity"] != "not_applicable"]
        text = "; ".join(f"{f['field']}: {_fmt(f['actual'])} (want {_fmt(f['expected'])})" for f in shown)
        lines.append(f"| {host} | {entry.get('image') or entry.get('platform') or '-'} | {entry['status']} "
                     f"| {text.replace('|', '/') or '-'} |")
    summary = ", ".join(f"{n} {status}" for status, n in report["summary"].items())
    return "\n".join([*lines, "", f"{len(report['nodes'])} nodes: {summary or 'none'}", ""])


def journal_text(host: str, entry: dict) -> str:
    """Markdown for the device's journal: the findings only (facts hold no secrets, and none are copied)."""
    rows = [f"- **{f['field']}** ({f['severity']}): {_fmt(f['actual'])}, image has {_fmt(f['expected'])}"
            for f in entry.get("findings") or [] if f["severity"] != "not_applicable"]
    return "\n".join([f"Node drift: {host} differs from image {entry.get('image') or entry.get('platform')}", "",
                      *rows])


def journal_entries(report: dict, device_ids: dict) -> list[dict]:
    return [{"device_id": device_ids[host], "kind": "warning", "comments": journal_text(host, report["nodes"][host])}
            for host in report["drifted_nodes"] if device_ids.get(host)]
