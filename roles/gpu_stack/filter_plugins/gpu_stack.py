# Copyright: gpucloud contributors
# Apache License 2.0 (see LICENSE)
"""Filters for the gpu_stack role: the stack to install (release profile plus overrides) and every problem in it."""

from __future__ import annotations

from ansible_collections.gpucloud.infra.plugins.module_utils import gpu_stack


def gpu_stack_resolve(vendor: str, profile: str = "", components: dict | None = None,
                      repositories: list | None = None, release: str = "") -> dict:
    """{vendor, release, repositories, components, errors}; profiles are files of the gpucloud.infra collection."""
    return gpu_stack.resolve(vendor, profile, components or None, repositories or None, release)


def gpu_stack_record(stack: dict) -> dict:
    """The content of /etc/gpucloud/gpu-stack.json."""
    return gpu_stack.record(stack["vendor"], stack["release"], stack["components"])


class FilterModule:
    def filters(self):
        return {"gpu_stack_resolve": gpu_stack_resolve, "gpu_stack_record": gpu_stack_record}
