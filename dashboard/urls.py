"""The dashboard's pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard.views import (
    batches,
    experiments,
    holds,
    lines,
    nonconformance,
    spc,
    stations,
    zones,
)
from dashboard.views.yields import pareto_page, yield_page

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
    path("zones/<slug:code>/", zones.zone_detail, name="zone"),
    path("lines/<slug:code>/live/zones", zones.line_zones, name="line-zones"),
    path("batches/", batches.batch_list, name="batches"),
    path("batches/<slug:code>/", batches.batch_detail, name="batch"),
    path("batches/<slug:code>/hold", batches.batch_hold, name="batch-hold"),
    path("batches/<slug:code>/labels/", batches.batch_labels, name="batch-labels"),
    path("cells/<slug:serial>/", batches.cell_detail, name="cell"),
    path("cells/<slug:serial>/hold", batches.cell_hold, name="cell-hold"),
    path("cells/<slug:serial>/scrap", batches.cell_scrap, name="cell-scrap"),
    path("cells/<slug:serial>/rework", batches.cell_rework, name="cell-rework"),
    path(
        "cells/<slug:serial>/runs/<int:run>/cycler-file",
        batches.cell_cycler_file,
        name="cell-cycler-file",
    ),
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
    *nonconformance.urlpatterns,
    *experiments.urlpatterns,
    path("quality/yield/", yield_page, name="yield"),
    path("quality/pareto/", pareto_page, name="pareto"),
    path("quality/spc/", spc.spc_chart_page, name="spc-chart"),
    path("quality/spc/freeze", spc.spc_freeze, name="spc-freeze"),
    path("quality/spc/settings", spc.spc_settings, name="spc-settings"),
    path("quality/spc/capability/<slug:code>/", spc.spc_capability, name="spc-capability"),
]
