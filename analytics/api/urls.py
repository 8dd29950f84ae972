from django.urls import path

from analytics.api import views

urlpatterns = [
    path("oee", views.OeeView.as_view(), name="api-oee"),
]
