"""gpucloud's NetBox plugin: serves the fleet inventory export at /api/plugins/gpucloud/inventory/.

Optional: the gpucloud_netbox inventory plugin uses it when present and falls back to GraphQL
when not. It exists because serialising thousands of devices and interfaces through REST or
GraphQL costs NetBox seconds of CPU, while the few columns an inventory needs come out of the
database in one pass per table.
"""

from netbox.plugins import PluginConfig


class GpucloudConfig(PluginConfig):
    name = "gpucloud_netbox_plugin"
    verbose_name = "gpucloud"
    description = "GPU fleet inventory export for gpucloud"
    version = "0.1.0"
    base_url = "gpucloud"
    min_version = "4.7.0"


config = GpucloudConfig
