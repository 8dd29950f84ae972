from django.urls import path

from environment.api import views

urlpatterns = [
    path("env/<str:zone>/readings", views.ZoneReadingsView.as_view(), name="api-env-readings"),
]
