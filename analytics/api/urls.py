from django.urls import path

from analytics.api.exports import MeasurementExportView

urlpatterns = [
    path("exports/measurements", MeasurementExportView.as_view(), name="api-export-measurements"),
]
