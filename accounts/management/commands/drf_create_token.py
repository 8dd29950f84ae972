"""Issue a personal API token for a user; the key is the last word of the output (API.md)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import issue_personal_token

ISSUER = "manage.py drf_create_token"


class Command(BaseCommand):
    help = (
        "Issue a personal API token for a user and print it as the last word of the output; it "
        "is shown only this once (only its digest is stored) and expires after "
        "PERSONAL_TOKEN_DAYS days. Send it as `Authorization: Token <key>`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username}.")
        if not user.is_active:
            raise CommandError(f"{username} is deactivated: a token would be refused.")
        token, key = issue_personal_token(user, by=ISSUER)
        self.stdout.write(
            f"Token for {username}, valid until {token.expiry:%Y-%m-%d %H:%M %Z} "
            f"(shown once): {key}"
        )
