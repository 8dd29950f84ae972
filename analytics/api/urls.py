from django.urls import path

from analytics.api import views

urlpatterns = [
    path("cells/<str:serial>/passport", views.CellPassportView.as_view(), name="api-cell-passport"),
]
