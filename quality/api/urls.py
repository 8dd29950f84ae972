from django.urls import path

from quality.api import views
from quality.spc import api as spc

urlpatterns = [
    path("hold-rules", views.HoldRuleListView.as_view(), name="api-hold-rules"),
    path("spc", spc.SpcChartView.as_view(), name="api-spc"),
    path("spc/baselines", spc.SpcBaselineView.as_view(), name="api-spc-baselines"),
    path("spc/settings", spc.SpcSettingView.as_view(), name="api-spc-settings"),
]
