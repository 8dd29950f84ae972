"""The project's URLs: each app contributes its own urls module."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.views import health
from stations.api.health import ingestion_health

api_v1 = [
    path("health", health, name="health"),
    path("health/ingestion", ingestion_health, name="ingestion-health"),
    path("", include("stations.api.urls")),
    path("", include("batches.api.urls")),
    path("", include("quality.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("", include("dashboard.urls")),
]
