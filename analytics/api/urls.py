from django.urls import path

from analytics.api import oee, views
from analytics.api.exports import MeasurementExportView

urlpatterns = [
    path("cells/<str:serial>/passport", views.CellPassportView.as_view(), name="api-cell-passport"),
    path("exports/measurements", MeasurementExportView.as_view(), name="api-export-measurements"),
    path("oee", oee.OeeView.as_view(), name="api-oee"),
]
