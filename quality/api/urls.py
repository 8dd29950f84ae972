from django.urls import path

from quality.api import views

urlpatterns = [
    path("hold-rules", views.HoldRuleListView.as_view(), name="api-hold-rules"),
]
