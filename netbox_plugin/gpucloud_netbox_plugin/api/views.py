"""The inventory export: devices, their interfaces, IP addresses and cable far ends.

Every queryset is restricted to what the requesting token's user may view (NetBox object
permissions), and the tenant filter is applied in the database, so a tenant-scoped token or a
tenant-scoped request never sees another tenant's devices.
"""

from dcim.models import CableTermination, Device, DeviceType, Interface
from django.contrib.contenttypes.models import ContentType
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from ipam.models import IPAddress
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from tenancy.models import Tenant

DEVICE_COLUMNS = ("id", "name", "status", "position", "custom_field_data", "last_updated", "tenant__slug",
                  "site__slug", "location__slug", "rack__name", "role__slug", "platform__slug", "device_type_id",
                  "primary_ip4__address", "oob_ip__address")
INTERFACE_COLUMNS = ("id", "device_id", "name", "type", "mgmt_only", "enabled", "cable_id")


def _jsonable(row: dict) -> dict:
    return {k: (str(v) if k.endswith("__address") and v is not None else v) for k, v in row.items()}


def _rows(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.DictField(), help_text=help_text)


EXPORT = inline_serializer("GpucloudInventoryExport", {
    "devices": _rows(f"Devices the token may view: {', '.join(DEVICE_COLUMNS)}."),
    "device_types": _rows("Device types: id, slug, manufacturer__slug, custom_field_data."),
    "interfaces": _rows(f"The devices' interfaces: {', '.join(INTERFACE_COLUMNS)}."),
    "ip_addresses": _rows("Addresses on those interfaces: address, interface_id."),
    "far_ends": _rows("Each cabled interface's far end: cable_id, interface, device."),
})


# Not a model view: NetBox's schema generator (drf-spectacular) is given the export's shape, since the view has no
# queryset or serializer to derive one from (without it /api/schema/ failed with a 500 for all of NetBox).
class InventoryExportView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="plugins_gpucloud_inventory_retrieve", tags=["plugins"], responses={200: EXPORT},
        summary="The fleet inventory in one pass, restricted to what the token's user may view",
        description="Devices, device types, interfaces, their IP addresses and cable far ends, for the "
                    "gpucloud_netbox inventory plugin; every table restricted by the token's object permissions.",
        parameters=[
            OpenApiParameter("role", OpenApiTypes.STR, many=True, description="Device role slugs (repeatable)."),
            OpenApiParameter("tenant", OpenApiTypes.STR, description="Only this tenant's devices (a slug)."),
            OpenApiParameter("interfaces", OpenApiTypes.BOOL, description="Include interfaces (default true)."),
        ])
    def get(self, request):
        user = request.user
        roles = request.GET.getlist("role")
        tenant = request.GET.get("tenant")
        with_interfaces = request.GET.get("interfaces", "true").lower() != "false"
        if tenant and not Tenant.objects.restrict(user, "view").filter(slug=tenant).exists():
            # 400, not 404: a 404 means "no such endpoint" to clients probing for this plugin.
            return Response({"detail": f"tenant '{tenant}' does not exist in NetBox"}, status=400)
        devices = Device.objects.restrict(user, "view")
        if roles:
            devices = devices.filter(role__slug__in=roles)
        if tenant:
            devices = devices.filter(tenant__slug=tenant)
        rows = [_jsonable(r) for r in devices.order_by("name").values(*DEVICE_COLUMNS)]
        types = list(DeviceType.objects.restrict(user, "view").values("id", "slug", "manufacturer__slug",
                                                                       "custom_field_data"))
        out = {"devices": rows, "device_types": types, "interfaces": [], "ip_addresses": [], "far_ends": []}
        if with_interfaces and rows:
            out.update(self._interfaces(user, [r["id"] for r in rows]))
        return Response(out)

    def _interfaces(self, user, device_ids):
        interfaces = list(Interface.objects.restrict(user, "view").filter(device_id__in=device_ids)
                          .values(*INTERFACE_COLUMNS))
        ids = [i["id"] for i in interfaces]
        interface_type = ContentType.objects.get_for_model(Interface)
        ips = [{"address": str(ip["address"]), "interface_id": ip["assigned_object_id"]}
               for ip in IPAddress.objects.restrict(user, "view")
               .filter(assigned_object_type=interface_type, assigned_object_id__in=ids)
               .values("address", "assigned_object_id")]
        cables = {i["cable_id"] for i in interfaces if i["cable_id"]}
        far = (CableTermination.objects.restrict(user, "view")
               .filter(cable_id__in=cables, termination_type=interface_type)
               .exclude(termination_id__in=ids).values("cable_id", "termination_id"))
        far_by_id = {f["termination_id"]: f["cable_id"] for f in far}
        names = Interface.objects.restrict(user, "view").filter(id__in=far_by_id).values("id", "name", "device__name")
        far_ends = [{"cable_id": far_by_id[n["id"]], "interface": n["name"], "device": n["device__name"]}
                    for n in names]
        return {"interfaces": interfaces, "ip_addresses": ips, "far_ends": far_ends}
