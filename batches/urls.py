from django.urls import path

from batches import views

urlpatterns = [
    path("batches/", views.batch_list, name="batches"),
    path("batches/<slug:code>/", views.batch_detail, name="batch"),
    path("batches/<slug:code>/hold", views.batch_hold, name="batch-hold"),
    path("batches/<slug:code>/labels/", views.batch_labels, name="batch-labels"),
    path("cells/<slug:serial>/", views.cell_detail, name="cell"),
    path("cells/<slug:serial>/hold", views.cell_hold, name="cell-hold"),
    path("cells/<slug:serial>/scrap", views.cell_scrap, name="cell-scrap"),
    path("cells/<slug:serial>/rework", views.cell_rework, name="cell-rework"),
    path("lots/", views.lot_list, name="lots"),
    path("lots/<slug:code>/", views.lot_detail, name="lot"),
    path("lots/<slug:code>/hold", views.lot_hold, name="lot-hold"),
    path("holds/", views.hold_queue, name="holds"),
    path("holds/rules/", views.hold_rules, name="hold-rules"),
    path(
        "holds/rules/<slug:code>/supersede", views.hold_rule_supersede, name="hold-rule-supersede"
    ),
    path("holds/<int:pk>/disposition", views.hold_disposition, name="hold-disposition"),
    path("search/", views.search, name="search"),
    path("station-results/", views.unapplied_results, name="unapplied-results"),
    path("station-results/requeue", views.requeue_results, name="requeue-results"),
]
