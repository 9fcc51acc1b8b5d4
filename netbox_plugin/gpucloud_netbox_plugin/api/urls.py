from django.urls import path

from .views import InventoryExportView

urlpatterns = [path("inventory/", InventoryExportView.as_view(), name="inventory")]
