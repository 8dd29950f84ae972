"""The demo's dew-point sensor: its readings pass the intake, and a long crossing counts."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from demo.dry_room import DewPointSensor
from environment.intake import accept_readings
from lines.models import Excursion


def test_a_long_crossing_of_the_demo_sensor_is_an_excursion(plant):
    sensor = DewPointSensor(zone="proto-dry-room", code="DP-demo", rng=random.Random(7))
    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()
    readings = [sensor.read(start + i * 5) for i in range(12)]  # a minute of dry air
    assert all(r["dew_point_c"] < -50 for r in readings[4:])
    # A crossing of 150 s forced from the next reading on.
    sensor.wet_until, sensor.wet_peak_c = start + 60 + 150, -32.0
    readings += [sensor.read(start + 60 + i * 5) for i in range(60)]
    reply = accept_readings("proto-dry-room", {"readings": readings})
    assert reply["accepted"] == 72 and reply["duplicates"] == 0
    excursion = Excursion.objects.get()
    assert excursion.counted_at is not None
    # Beyond -40 from a few readings into the crossing until a few after it ends.
    assert 120 <= excursion.duration_s <= 200
    assert excursion.peak > -40
