"""`simulate_dry_room`: a dew-point sensor per zone posting readings, as a gateway would."""

from __future__ import annotations

import random
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import issue_personal_token
from demo.dry_room import DewPointSensor, readings_every
from demo.station_http import StationHTTP
from lines.models import Zone

GATEWAY = "dry-room-gateway"
ACTOR = "simulate_dry_room"


class Command(BaseCommand):
    help = "Post a dew-point sensor's readings for every dry-room zone (e.g. `simulate_dry_room --interval 5`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between readings")
        parser.add_argument("--count", type=int, default=0, help="Stop after this many (0: never)")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be positive.")
        zones = list(Zone.objects.order_by("code"))
        if not zones:
            raise CommandError("No dry-room zone: run seed_demo first.")
        rng = random.Random(options["seed"])
        sensors = [
            DewPointSensor(
                zone=zone.code,
                code=f"{zone.code}-DP1",
                rng=rng,
                limit_c=float(zone.limits.get("dew_point_c", {}).get("max", -40)),
            )
            for zone in zones
        ]
        client = StationHTTP(options["base_url"], self.gateway_key(), scheme="Token")
        self.stdout.write(
            f"Dry-room sensors for {', '.join(s.zone for s in sensors)}: a reading every "
            f"{options['interval']:g} s at {options['base_url']}"
        )
        sent = 0
        try:
            for readings in readings_every(sensors, options["interval"]):
                for sensor, reading in zip(sensors, readings, strict=True):
                    reply = client.post(
                        f"/api/v1/env/{sensor.zone}/readings", {"readings": [reading]}
                    )
                    if reply.status != 202:
                        self.stderr.write(f"{sensor.zone}: {reply.status} {reply.body}")
                    elif reply.body.get("excursions"):
                        self.stdout.write(
                            f"{sensor.zone}: dew point {reading['dew_point_c']} °C, an excursion counts"
                        )
                sent += 1
                if options["count"] and sent >= options["count"]:
                    break
        except KeyboardInterrupt:
            self.stdout.write("Interrupted.")

    def gateway_key(self) -> str:
        """A personal token of the demo's sensor gateway (a user that may only send readings)."""
        user, _ = User.objects.get_or_create(username=GATEWAY)
        user.groups.add(Group.objects.get(name="sensor_gateway"))
        _, key = issue_personal_token(user, by=ACTOR)
        return key
