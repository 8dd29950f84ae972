from django.urls import path

from batches.api import views

urlpatterns = [
    path("lines", views.LineListView.as_view(), name="api-lines"),
    path("batches", views.BatchListView.as_view(), name="api-batches"),
    path("batches/<slug:code>", views.BatchDetailView.as_view(), name="api-batch"),
    path("batches/<slug:code>/hold", views.BatchHoldView.as_view(), name="api-batch-hold"),
    path("cells/<slug:serial>", views.CellDetailView.as_view(), name="api-cell"),
    path("lots", views.LotListView.as_view(), name="api-lots"),
    path("lots/<slug:code>", views.LotDetailView.as_view(), name="api-lot"),
    path("lots/<slug:code>/hold", views.LotHoldView.as_view(), name="api-lot-hold"),
    path("holds", views.HoldListView.as_view(), name="api-holds"),
    path("holds/<int:pk>/release", views.HoldReleaseView.as_view(), name="api-hold-release"),
]
