from django.urls import path

from mes import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/ingestion", views.ingestion_health, name="ingestion-health"),
]
