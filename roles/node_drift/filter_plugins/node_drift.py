# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the node_drift role: pick a node's image manifest, shape its entry, build the fleet report."""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils import image_drift


def node_drift_image(platform, given: dict, fetched: dict | None) -> dict:
    """{platform, manifest, problem} for a node: from node_drift_manifests when given, else from NetBox."""
    if not platform:
        return {"platform": None, "manifest": None, "problem": "no image assigned (no platform in NetBox)"}
    if given:
        manifest = given.get(platform)
        return {"platform": platform, "manifest": manifest,
                "problem": None if manifest else f"no manifest given for platform {platform}"}
    entry = ((fetched or {}).get("manifests") or {}).get(platform) or {}
    return {"platform": platform, "manifest": entry.get("manifest"),
            "problem": entry.get("problem") or (None if entry.get("manifest") else "no image manifest")}


def node_drift_manifest_packages(image: dict, extra=None) -> list:
    return sorted(set(image_drift.manifest_packages((image or {}).get("manifest"))) | set(extra or []))


def node_drift_entry(image: dict, result: dict | None) -> dict:
    """The node's line of the report."""
    manifest = image.get("manifest")
    if manifest is None:
        status = "no_image" if image.get("platform") is None else "no_manifest"
        return {"platform": image.get("platform"), "image": None, "status": status, "findings": [],
                "problem": image.get("problem")}
    return {"platform": image["platform"], "image": f"{manifest['name']} {manifest['version']}",
            "status": (result or {}).get("status", "in_sync"), "findings": (result or {}).get("findings", [])}


def node_drift_report(entries: dict, generated_at: str, not_checked=None) -> dict:
    return image_drift.fleet_report(entries, generated_at, not_checked or [])


def node_drift_markdown(report: dict) -> str:
    return image_drift.markdown_table(report)


def node_drift_journal(report: dict, device_ids: dict) -> list:
    return image_drift.journal_entries(report, device_ids)


class FilterModule:
    def filters(self):
        return {f.__name__: f for f in (node_drift_image, node_drift_manifest_packages, node_drift_entry,
                                        node_drift_report, node_drift_markdown, node_drift_journal)}
