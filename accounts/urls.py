"""The user's own pages."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/tokens/", views.personal_tokens, name="personal-tokens"),
    path("accounts/tokens/revoke", views.revoke_token, name="revoke-personal-token"),
]
