"""The v1 API: each app contributes its own urls module here."""

from django.urls import include, path

urlpatterns: list = [
    path("", include("mes.health_urls")),
    path("", include("batches.api.station_urls")),
    path("", include("batches.api.engineer_urls")),
]
