# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Intent profiles: data files (profiles/bios/<name>.yml in this collection) mapping tuning intents
to each vendor's BIOS attribute names. Code only picks the vendor and merges; it knows no names."""

from __future__ import annotations

from pathlib import Path

import yaml

PROFILE_DIR = Path(__file__).resolve().parents[2] / "profiles" / "bios"
VENDORS = ("dell", "hpe", "supermicro", "lenovo", "generic")
MANUFACTURERS = (("dell", "dell"), ("hpe", "hpe"), ("hewlett", "hpe"), ("supermicro", "supermicro"),
                 ("super micro", "supermicro"), ("lenovo", "lenovo"))


class ProfileError(Exception):
    pass


def detect_vendor(system: dict) -> str:
    """From Redfish Manufacturer (and Model as a fallback); 'generic' for anything else."""
    text = f"{system.get('Manufacturer') or ''} {system.get('Model') or ''}".lower()
    for needle, vendor in MANUFACTURERS:
        if needle in text:
            return vendor
    if "poweredge" in text:
        return "dell"
    if "proliant" in text:
        return "hpe"
    if "thinksystem" in text:
        return "lenovo"
    return "generic"


def load(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if path.suffix not in (".yml", ".yaml"):
        path = PROFILE_DIR / f"{name_or_path}.yml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yml")))
        raise ProfileError(f"no BIOS profile {name_or_path!r} (known: {known})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data.get("intents"), dict) or not isinstance(data.get("vendors"), dict):
        raise ProfileError(f"{path}: a profile needs 'intents' and 'vendors' mappings")
    return data


def resolve(profile: dict, vendor: str, features: list[str]) -> tuple[dict, list[str]]:
    """(attributes, intents this vendor's mapping does not cover) for the vendor and features."""
    mapping = profile["vendors"].get(vendor) or profile["vendors"].get("generic") or {}
    attributes, unsupported = {}, []
    for intent, spec in profile["intents"].items():
        spec = spec or {}
        if spec.get("feature") and spec["feature"] not in features:
            continue
        if set(spec.get("unless_features") or []) & set(features):
            continue
        values = mapping.get(intent)
        if values is None:
            unsupported.append(intent)
            continue
        attributes.update(values)
    return attributes, unsupported
