"""The v1 API: each app contributes its own urls module here."""

from django.urls import include, path

urlpatterns: list = [
    path("", include("mes.health_urls")),
]
