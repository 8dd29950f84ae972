from django.urls import path

from stations.api import results, views

urlpatterns = [
    path("station", views.StationDetailView.as_view(), name="station"),
    path("station/track-in", views.TrackInView.as_view(), name="station-track-in"),
    path("station/results", views.ResultsView.as_view(), name="station-results"),
    path(
        "station/results/<path:event_id>",
        views.ResultStatusView.as_view(),
        name="station-result-status",
    ),
    path("station/state", views.StateView.as_view(), name="station-state"),
    path("station/cycler-files", views.CyclerFileView.as_view(), name="station-cycler-files"),
    path(
        "station-results", results.UnappliedResultListView.as_view(), name="api-unapplied-results"
    ),
    path(
        "station-results/requeue",
        results.UnappliedResultRequeueView.as_view(),
        name="api-requeue-results",
    ),
]
