"""Issue (or revoke) a station's API token; the token is printed alone on the last line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lines.models import Station
from stations.services import issue_station_token, revoke_station_token

ISSUER = "manage.py station_token"


class Command(BaseCommand):
    help = (
        "Issue an API token for a station (older tokens are revoked unless --keep-others) and "
        "print it alone on the last line; it is shown only this once. --revoke revokes all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("station", help="Station code, e.g. PR-PRS-1")
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--keep-others", action="store_true", help="Do not revoke the station's older tokens"
        )
        group.add_argument(
            "--revoke", action="store_true", help="Revoke every token of the station; issue none"
        )

    def handle(self, *args, station: str, keep_others: bool, revoke: bool, **options) -> None:
        found = Station.objects.filter(code=station).first()
        if found is None:
            raise CommandError(f"No station {station}.")
        if revoke:
            tokens = list(found.tokens.filter(revoked_at__isnull=True))
            for token in tokens:
                revoke_station_token(token, by=ISSUER)
            self.stdout.write(f"Revoked {len(tokens)} token(s) of {found.code}.")
            return
        key = issue_station_token(found, by=ISSUER, revoke_others=not keep_others)
        self.stderr.write(
            f"Token for {found.code} (shown once; use as `Authorization: Bearer <token>`):"
        )
        self.stdout.write(key)
