"""Personal-token authentication for the engineers' API (`Authorization: Token <key>`).

django-rest-knox's: a token is found by the first characters of its key and checked against its
SHA-512 digest; an expired one is deleted and refused. Here a bad token also counts against the
client's address (core.throttling: 429 once the address fails too often).
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.throttling import counting_failed_authentication


class PersonalTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Request) -> tuple[User, AuthToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.authenticate_header(request).lower().encode():
            return None  # another scheme's, or none: the next class or the permission decides
        with counting_failed_authentication(request):
            return super().authenticate(request)

    def authenticate_credentials(self, token: bytes) -> tuple[User, AuthToken]:
        try:
            token.decode("utf-8")  # knox decodes it unguarded: a 500 for a stray byte
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        """Whether the token presented has expired (it is then deleted, and refused).

        Knox also looks through every other token of the user for expired ones on each request,
        a second query per request; an expired token is refused whenever it is presented, and
        the user's page shows and revokes it, so that is left out.
        """
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    """Documents the personal token in the OpenAPI schema (security scheme `tokenAuth`)."""

    target_class = "accounts.auth.PersonalTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "An engineer's personal token, as `Token <key>`: from the user's page "
                "(/accounts/tokens/) or `python manage.py drf_create_token USERNAME`"
            ),
        }
