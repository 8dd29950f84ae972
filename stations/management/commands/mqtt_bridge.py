"""Run the MQTT bridge (stations/mqtt.py) until SIGTERM or Ctrl-C."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stations.mqtt import parse_url, run_bridge, topics


class Command(BaseCommand):
    help = (
        "Feed station messages from the MQTT broker (MQTT_URL) into the intake: results and "
        "state under mes/v1/<station>/, replies on mes/v1/<station>/replies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=None, help="Broker URL (default: MQTT_URL)")
        parser.add_argument("--client-id", default=None, help="Default: MQTT_CLIENT_ID")

    def handle(self, *args, url: str | None, client_id: str | None, **options) -> None:
        url = url or settings.MQTT_URL
        if not url:
            raise CommandError("Set MQTT_URL (e.g. mqtt://127.0.0.1:1883) or pass --url.")
        if settings.MQTT_PROTOCOL not in ("5", "3.1.1"):
            raise CommandError(f"MQTT_PROTOCOL must be 5 or 3.1.1, not {settings.MQTT_PROTOCOL}")
        try:
            parse_url(url)
        except ValueError as error:
            raise CommandError(str(error)) from None
        client_id = client_id or settings.MQTT_CLIENT_ID
        self.stdout.write(f"MQTT bridge {client_id} on {url}: {', '.join(topics())}")
        run_bridge(
            url=url,
            client_id=client_id,
            protocol=settings.MQTT_PROTOCOL,
            session_expiry_s=settings.MQTT_SESSION_EXPIRY_SECONDS,
        )
