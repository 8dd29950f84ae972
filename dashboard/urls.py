"""The dashboard's pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard.views import batches, equipment, holds, lines, performance, stations

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", lines.home, name="home"),
    path("live/lines", lines.home_lines, name="home-lines"),
    path("lines/<slug:code>/", lines.line_detail, name="line"),
    path("lines/<slug:code>/live/stations", lines.line_stations, name="line-stations"),
    path("lines/<slug:code>/live/batches", lines.line_batches, name="line-batches"),
    path("lines/<slug:code>/live/holds", lines.line_holds, name="line-holds"),
    path("recipes/", lines.recipes, name="recipes"),
    path("lines/<slug:code>/oee/", performance.line_oee, name="line-oee"),
    path("stations/<slug:code>/stops/", performance.station_stops, name="station-stops"),
    path("stops/<int:pk>/reason", performance.stop_reason, name="stop-reason"),
    path(
        "recipe-versions/<int:pk>/ideal-cycle-time",
        performance.ideal_cycle_time,
        name="ideal-cycle-time",
    ),
    path("equipment/", equipment.equipment_list, name="equipment-list"),
    path("equipment/<slug:code>/", equipment.equipment_detail, name="equipment"),
    path("equipment/<slug:code>/status", equipment.equipment_status, name="equipment-status"),
    path(
        "equipment/<slug:code>/calibration",
        equipment.equipment_calibration,
        name="equipment-calibration",
    ),
    path("batches/", batches.batch_list, name="batches"),
    path("batches/<slug:code>/", batches.batch_detail, name="batch"),
    path("batches/<slug:code>/hold", batches.batch_hold, name="batch-hold"),
    path("batches/<slug:code>/labels/", batches.batch_labels, name="batch-labels"),
    path("cells/<slug:serial>/", batches.cell_detail, name="cell"),
    path("cells/<slug:serial>/hold", batches.cell_hold, name="cell-hold"),
    path("cells/<slug:serial>/scrap", batches.cell_scrap, name="cell-scrap"),
    path("cells/<slug:serial>/rework", batches.cell_rework, name="cell-rework"),
    path("lots/", batches.lot_list, name="lots"),
    path("lots/<slug:code>/", batches.lot_detail, name="lot"),
    path("lots/<slug:code>/hold", batches.lot_hold, name="lot-hold"),
    path("lots/<slug:code>/status", batches.lot_status, name="lot-status"),
    path("search/", batches.search, name="search"),
    path("press-cycles/<slug:station>/<str:ref>/", batches.press_cycle, name="press-cycle"),
    path(
        "press-cycles/<slug:station>/<str:ref>/hold",
        batches.press_cycle_hold,
        name="press-cycle-hold",
    ),
    path("holds/", holds.hold_queue, name="holds"),
    path("holds/rules/", holds.hold_rules, name="hold-rules"),
    path(
        "holds/rules/<slug:code>/supersede", holds.hold_rule_supersede, name="hold-rule-supersede"
    ),
    path("holds/<int:pk>/disposition", holds.hold_disposition, name="hold-disposition"),
    path("holds/<int:pk>/row", holds.hold_row, name="hold-row"),
    path("station-results/", stations.unapplied_results, name="unapplied-results"),
    path("station-results/requeue", stations.requeue_results, name="requeue-results"),
]
