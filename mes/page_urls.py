"""Dashboard pages: each app contributes its own urls module here."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from mes import views

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("live/lines", views.home_lines, name="home-lines"),
    path("", include("lines.urls")),
    path("", include("batches.urls")),
]
