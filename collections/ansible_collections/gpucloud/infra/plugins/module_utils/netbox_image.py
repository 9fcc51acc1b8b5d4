# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Golden OS images in NetBox: an image is a dcim.platform, and a device runs the image its platform names.

Why a Platform (and not a custom object or a device custom field): it is NetBox's model for the
software a device runs. Every device points at one, the device list, its filters and the device
page show it, the inventory plugin groups hosts by it, config contexts can key on it, and nested
platforms give the image family (parent, slug = image name) -> one platform per version (slug
"<name>-<version>", dots as dashes). The version platform carries image_version, image_build_key,
image_sha256 and the whole manifest (custom fields, see datamodel.py), so NetBox alone answers
"what should this node run, and what is in it".

Read, compare, act: the platforms through netbox_reconcile, the devices' platform with one bulk PATCH.
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.gpucloud.infra.plugins.module_utils import netbox_reconcile

PLATFORMS = "dcim/platforms"
DEVICES = "dcim/devices"
SCHEMA_VERSION = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
SLUG_MAX = 100  # NetBox's limit for a platform's name and slug
NAMES_PER_QUERY = 100
# NetBox ignores query parameters it does not know, so a misspelt filter would select every device and put the
# whole fleet on this image. Only these device filters (and their lookups, e.g. name__ic) and cf_<custom field>
# are accepted.
DEVICE_FILTERS = frozenset((
    "id", "name", "q", "status", "tag", "serial", "asset_tag", "role", "role_id", "device_type", "device_type_id",
    "manufacturer", "manufacturer_id", "platform", "platform_id", "tenant", "tenant_id", "tenant_group",
    "tenant_group_id", "site", "site_id", "site_group", "site_group_id", "region", "region_id", "location",
    "location_id", "rack_id", "cluster_id", "cluster_group_id", "virtual_chassis_id", "has_primary_ip"))
IMAGE_FIELDS = ("image_version", "image_build_key", "image_sha256", "image_manifest")


class ImageError(Exception):
    """A problem with the image or its assignment; errors lists every one found."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or [message]


# -- the manifest ----------------------------------------------------------------------------------

def load_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except OSError as exc:
        raise ImageError(f"cannot read the manifest {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ImageError(f"the manifest {path} is not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ImageError(f"the manifest {path}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


def _check(errors: list[str], ok: bool, field: str, expected: str, value) -> None:
    if not ok:
        errors.append(f"{field}: expected {expected}, got {value!r}")


def validate_manifest(manifest: dict) -> list[str]:
    """Every missing or invalid field of a golden_image manifest, at once."""
    m, errors = manifest, []
    _check(errors, m.get("schema_version") == SCHEMA_VERSION, "schema_version", str(SCHEMA_VERSION),
           m.get("schema_version"))
    _check(errors, isinstance(m.get("name"), str) and bool(_NAME.match(m["name"])), "name",
           "lowercase letters, digits and '-' (e.g. gpu-debian12)", m.get("name"))
    _check(errors, isinstance(m.get("version"), str) and bool(_VERSION.match(m["version"])), "version",
           "letters, digits, '.', '+', '_' or '-' (e.g. 20261123.1)", m.get("version"))
    _check(errors, isinstance(m.get("build_key"), str) and bool(_SHA256.match(m["build_key"])), "build_key",
           "a sha256 (64 lowercase hex digits)", m.get("build_key"))
    for section in ("base", "kernel"):
        _check(errors, isinstance(m.get(section), dict) and bool(m[section]), section, "a non-empty object",
               m.get(section))
    _check(errors, isinstance(m.get("built_at"), str) and bool(m["built_at"]), "built_at",
           "a timestamp like 2026-11-23T02:40:00Z", m.get("built_at"))
    artifacts = m.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        errors.append(f"artifacts: expected an object of artifacts (raw, qcow2, ...), got {artifacts!r}")
        artifacts = {}
    for kind, art in artifacts.items():
        where = f"artifacts.{kind}"
        if not isinstance(art, dict):
            errors.append(f"{where}: expected an object with file, sha256 and bytes, got {art!r}")
            continue
        _check(errors, isinstance(art.get("file"), str) and bool(art["file"]) and "/" not in art["file"],
               f"{where}.file", "a file name (no directory)", art.get("file"))
        _check(errors, isinstance(art.get("sha256"), str) and bool(_SHA256.match(art["sha256"])),
               f"{where}.sha256", "a sha256 (64 lowercase hex digits)", art.get("sha256"))
        _check(errors, isinstance(art.get("bytes"), int) and not isinstance(art["bytes"], bool)
               and art["bytes"] >= 0, f"{where}.bytes", "a byte count", art.get("bytes"))
    if not errors and len(version_slug(m["name"], m["version"])) > SLUG_MAX:
        errors.append(f"name/version: '<name>-<version>' must fit NetBox's {SLUG_MAX} characters")
    return errors


# -- platforms ----------------------------------------------------------------------------------

def version_slug(name: str, version: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", f"{name}-{version}".lower())


def image_sha256(manifest: dict) -> str | None:
    """The qcow2's sha256 (what is distributed), the raw's when there is no qcow2."""
    artifacts = manifest.get("artifacts") or {}
    for kind in ("qcow2", "raw"):
        if kind in artifacts:
            return artifacts[kind]["sha256"]
    return None


def desired_platforms(manifest: dict) -> list[dict]:
    """The family platform, then the version platform (its child) carrying the manifest."""
    name, version = manifest["name"], manifest["version"]
    family = {"name": name, "slug": name, "description": "gpucloud golden image family"}
    kernel = (manifest.get("kernel") or {}).get("release", "")
    fields = {"image_version": version, "image_build_key": manifest["build_key"],
              "image_sha256": image_sha256(manifest), "image_manifest": manifest}
    child = {"name": f"{name} {version}", "slug": version_slug(name, version), "parent": {"slug": name},
             "description": f"gpucloud golden image, kernel {kernel}" if kernel else "gpucloud golden image",
             "custom_fields": fields}
    return [family, child]


def _platform_view(obj: dict | None) -> dict | None:
    """What the diff shows of a platform: its identity and image fields, the manifest by build key only."""
    if obj is None:
        return None
    fields = obj.get("custom_fields") or {}
    parent = obj.get("parent") or {}
    view = {"name": obj.get("name"), "parent": parent.get("name") or parent.get("slug"),
            "description": obj.get("description")}
    view.update({k: fields.get(k) for k in IMAGE_FIELDS if k in fields and k != "image_manifest"})
    if fields.get("image_manifest") is not None:  # a digest: the whole manifest would drown the diff
        view["image_manifest"] = "sha256:" + hashlib.sha256(
            json.dumps(fields["image_manifest"], sort_keys=True).encode()).hexdigest()
    return view


def _desired_view(want: dict, existing: dict | None) -> dict:
    merged = dict(existing or {})
    merged.update({k: v for k, v in want.items() if k not in ("custom_fields", "parent")})
    if "parent" in want:
        merged["parent"] = want["parent"]
    merged["custom_fields"] = {**((existing or {}).get("custom_fields") or {}), **want.get("custom_fields", {})}
    return _platform_view(merged)


def _platforms(nb, slugs: list[str]) -> dict[str, dict]:
    return {p["slug"]: p for p in nb.list(PLATFORMS, slug=slugs)} if slugs else {}


def _ensure_platforms(nb, wanted: list[dict], check_mode: bool) -> tuple[dict, dict, dict]:
    """Create/patch the platforms in order (family first); returns before, after and the platforms now."""
    existing = _platforms(nb, [w["slug"] for w in wanted])
    before = {w["slug"]: _platform_view(existing.get(w["slug"])) for w in wanted}
    after = {w["slug"]: _desired_view(w, existing.get(w["slug"])) for w in wanted}
    for want in wanted:  # one at a time: the version's parent must exist before it is created
        parent = existing.get((want.get("parent") or {}).get("slug"))
        if parent:  # NetBox shows a platform's parent by id and name, not slug: compare (and write) by id
            want = {**want, "parent": {"id": parent["id"]}}
        plan = netbox_reconcile.plan_collection(list(existing.values()), {"key": ["slug"], "objects": [want]})
        if check_mode:
            continue
        if plan["create"]:
            existing[want["slug"]] = nb.create(PLATFORMS, plan["create"])[0]
        elif plan["update"]:
            existing[want["slug"]] = nb.update(PLATFORMS, plan["update"])[0]
    return before, after, existing


# -- devices ------------------------------------------------------------------------------------

def validate_filter(device_filter: dict) -> list[str]:
    return [f"device_filter.{key}: not a NetBox device filter this module accepts (NetBox ignores unknown "
            f"filters, which would select every device); use one of {', '.join(sorted(DEVICE_FILTERS))} "
            "(with lookups such as __ic) or cf_<custom field>"
            for key in device_filter if not (key.split("__")[0] in DEVICE_FILTERS or key.startswith("cf_"))]


def _device_rows(nb, names: list[str], device_filter: dict) -> tuple[list[dict], list[str]]:
    """The devices named and/or matched by the filter ({id, name, platform}); names NetBox does not know."""
    rows: dict[int, dict] = {}
    missing: list[str] = []
    if names:
        found = [d for start in range(0, len(names), NAMES_PER_QUERY)  # keeps the query string short
                 for d in nb.list(DEVICES, name=names[start:start + NAMES_PER_QUERY], fields="id,name,platform")]
        rows.update({d["id"]: d for d in found})
        known = {d["name"] for d in found}
        missing = [n for n in names if n not in known]
    if device_filter:
        rows.update({d["id"]: d for d in nb.list(DEVICES, fields="id,name,platform", **device_filter)})
    return sorted(rows.values(), key=lambda d: d["name"] or ""), missing


def _slug(platform) -> str | None:
    return platform.get("slug") if isinstance(platform, dict) else None


def assign(nb, slug: str, platform_id: int | None, rows: list[dict], check_mode: bool) -> tuple[dict, dict]:
    """Point the devices at the platform, one bulk PATCH for those that differ; returns before/after."""
    before = {d["name"]: _slug(d.get("platform")) for d in rows}
    after = {d["name"]: slug for d in rows}
    todo = [{"id": d["id"], "platform": platform_id} for d in rows if _slug(d.get("platform")) != slug]
    if todo and not check_mode:
        nb.update(DEVICES, todo)
    return before, after


# -- the two states -------------------------------------------------------------------------------

def unassign(nb, names: list[str], check_mode: bool) -> dict:
    """Clear the devices' platform (one bulk PATCH); ImageError naming the devices NetBox does not know."""
    rows, missing = _device_rows(nb, sorted(set(names)), {})
    if missing:
        raise ImageError(f"devices not in NetBox: {', '.join(missing)}")
    before, after = assign(nb, None, None, rows, check_mode)
    return {"changed": before != after, "platforms": before, "unassigned": sorted(n for n in before if before[n]),
            "diff": {"before": before, "after": after}}


def present(nb, manifest: dict, devices: list[str], device_filter: dict, check_mode: bool) -> dict:
    errors = validate_manifest(manifest)
    if errors:
        raise ImageError(f"the image manifest has {len(errors)} error(s): " + "; ".join(errors), errors)
    errors = validate_filter(device_filter)
    if errors:
        raise ImageError("; ".join(errors), errors)
    wanted = desired_platforms(manifest)
    slug = wanted[1]["slug"]
    rows, missing = _device_rows(nb, devices, device_filter)
    if missing:
        raise ImageError(f"devices not in NetBox: {', '.join(missing)}")
    p_before, p_after, platforms = _ensure_platforms(nb, wanted, check_mode)
    platform_id = (platforms.get(slug) or {}).get("id")
    d_before, d_after = assign(nb, slug, platform_id, rows, check_mode)
    before = {"platforms": p_before, "devices": d_before}
    after = {"platforms": p_after, "devices": d_after}
    return {"changed": before != after, "platform": slug, "family": wanted[0]["slug"], "platform_id": platform_id,
            "devices": sorted(d_after), "assigned": sorted(n for n in d_after if d_before[n] != slug),
            "diff": {"before": before, "after": after}}


def absent(nb, name: str, version: str | None, check_mode: bool) -> dict:
    """Remove one version's platform, or (no version) the family with all its versions.

    Refuses while any device or virtual machine still runs one of them: deleting the platform
    would silently clear their assignment."""
    slug = version_slug(name, version) if version else name
    found = _platforms(nb, [slug])
    if slug not in found:
        return {"changed": False, "platform": slug, "removed": [], "diff": {"before": {}, "after": {}}}
    targets = [found[slug]]
    if not version:
        targets = nb.list(PLATFORMS, parent_id=found[slug]["id"]) + targets  # children first
    in_use = [p for p in targets if p.get("device_count") or p.get("virtualmachine_count")]
    if in_use:
        users = nb.get(DEVICES, platform_id=[p["id"] for p in in_use], fields="name", limit=10)["results"]
        names = ", ".join(d["name"] for d in users)
        raise ImageError(f"refusing to remove {', '.join(p['slug'] for p in in_use)}: still assigned to "
                         f"{sum(p.get('device_count') or 0 for p in in_use)} device(s) "
                         f"({names}) and {sum(p.get('virtualmachine_count') or 0 for p in in_use)} VM(s); "
                         "assign them another image first")
    if not check_mode:
        nb.request("DELETE", PLATFORMS, payload=[{"id": p["id"]} for p in targets])
    removed = [p["slug"] for p in targets]
    return {"changed": True, "platform": slug, "removed": removed,
            "diff": {"before": {s: "present" for s in removed}, "after": {}}}


# -- reading -----------------------------------------------------------------------------------------

def manifests(nb, slugs: list[str] | None = None) -> dict:
    """{slug: manifest} and {slug: summary} of the image platforms asked for (all when none)."""
    found = list(_platforms(nb, slugs).values()) if slugs else nb.list(PLATFORMS)
    images = {p["slug"]: p for p in found if (p.get("custom_fields") or {}).get("image_manifest")}
    if slugs:
        missing = [s for s in slugs if s not in images]
        if missing:
            raise ImageError(f"no image platform in NetBox for: {', '.join(missing)}")
    summary = {slug: {"id": p["id"], "name": p["name"], "family": (p.get("parent") or {}).get("name"),
                      "version": p["custom_fields"].get("image_version"),
                      "build_key": p["custom_fields"].get("image_build_key"),
                      "sha256": p["custom_fields"].get("image_sha256"), "device_count": p.get("device_count", 0)}
               for slug, p in images.items()}
    return {"manifests": {s: p["custom_fields"]["image_manifest"] for s, p in images.items()}, "platforms": summary}
