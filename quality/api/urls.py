from django.urls import path

from quality.api import nonconformance as ncr
from quality.api import views
from quality.api.figures import ParetoView, YieldView
from quality.experiments import api as experiments
from quality.spc import api as spc

urlpatterns = [
    path("hold-rules", views.HoldRuleListView.as_view(), name="api-hold-rules"),
    path("ncrs", ncr.NcrListView.as_view(), name="api-ncrs"),
    path("ncrs/<slug:code>", ncr.NcrDetailView.as_view(), name="api-ncr"),
    path("ncrs/<slug:code>/containment", ncr.NcrContainmentView.as_view()),
    path("ncrs/<slug:code>/holds", ncr.NcrHoldAddView.as_view()),
    path("ncrs/<slug:code>/holds/<int:hold>", ncr.NcrHoldRemoveView.as_view()),
    path("ncrs/<slug:code>/root-cause", ncr.NcrRootCauseView.as_view()),
    path("ncrs/<slug:code>/actions", ncr.NcrActionListView.as_view()),
    path("ncrs/<slug:code>/actions/<int:action>/done", ncr.NcrActionDoneView.as_view()),
    path("ncrs/<slug:code>/verify", ncr.NcrVerifyView.as_view()),
    path("ncrs/<slug:code>/reopen", ncr.NcrReopenView.as_view()),
    path("ncrs/<slug:code>/close", ncr.NcrCloseView.as_view()),
    path("ncrs/<slug:code>/cancel", ncr.NcrCancelView.as_view()),
    path("experiments", experiments.ExperimentListView.as_view(), name="api-experiments"),
    path("experiments/<slug:code>", experiments.ExperimentDetailView.as_view()),
    path("experiments/<slug:code>/results", experiments.ExperimentResultsView.as_view()),
    path("experiments/<slug:code>/start", experiments.ExperimentStartView.as_view()),
    path("experiments/<slug:code>/deviation", experiments.ExperimentDeviationView.as_view()),
    path("experiments/<slug:code>/conclude", experiments.ExperimentConcludeView.as_view()),
    path("experiments/<slug:code>/cancel", experiments.ExperimentCancelView.as_view()),
    path("yield", YieldView.as_view(), name="api-yield"),
    path("pareto", ParetoView.as_view(), name="api-pareto"),
    path("spc", spc.SpcChartView.as_view(), name="api-spc"),
    path("spc/baselines", spc.SpcBaselineView.as_view(), name="api-spc-baselines"),
    path("spc/settings", spc.SpcSettingView.as_view(), name="api-spc-settings"),
]
