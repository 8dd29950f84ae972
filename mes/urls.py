"""The project's URLs: each app contributes its own urls module."""

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from core.views import health
from stations.api.health import ingestion_health

api_v1 = [
    path("health", health, name="health"),
    path("health/ingestion", ingestion_health, name="ingestion-health"),
    path("", include("stations.api.urls")),
    path("", include("batches.api.urls")),
    path("", include("quality.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("environment.api.urls")),
]

# The API's docs, served from drf-spectacular-sidecar's static files (no CDN). Swagger UI's page
# loads its start-up script from a URL of its own (the split view), so no script is inline; both
# pages set styles inline at run time (ReDoc in <style> elements, its search in a blob: worker) and
# draw icons from data: URLs, which their pages alone are allowed.
docs_policy = csp_update(
    {"style-src": [UNSAFE_INLINE], "img-src": ["data:"], "worker-src": [SELF, "blob:"]}
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        docs_policy(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        docs_policy(
            SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
    path("api/v1/", include(api_v1)),
    # The language switch of the navigation (Django's set_language: cookie, then back).
    path("i18n/", include("django.conf.urls.i18n")),
    path("i18n/js/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("accounts.urls")),
    path("", include("dashboard.urls")),
]

# Under /api/ the contract's JSON error format, the product's pages elsewhere (core/views.py).
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
