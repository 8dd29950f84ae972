from django.urls import path

from quality.api import views
from quality.api.figures import ParetoView, YieldView

urlpatterns = [
    path("hold-rules", views.HoldRuleListView.as_view(), name="api-hold-rules"),
    path("yield", YieldView.as_view(), name="api-yield"),
    path("pareto", ParetoView.as_view(), name="api-pareto"),
]
