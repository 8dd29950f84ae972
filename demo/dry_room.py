"""A dew-point sensor per dry-room zone for the demo: readings every few seconds over HTTP, as a
sensor gateway sends them, with now and then a short crossing of the limit (tolerated) and, more
rarely, a long one (an excursion that holds what it touched)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Per reading: the chance that a crossing starts, and how long (s) a short and a long one last.
SHORT_CHANCE = 1 / 150
LONG_CHANCE = 1 / 1500
SHORT_S = (15, 45)
LONG_S = (90, 240)


@dataclass
class DewPointSensor:
    """One zone's sensor: dew point around its setpoint, room temperature, a trace of H2S; during
    a crossing the air turns moist and the sulfide electrolyte gives off H2S."""

    zone: str
    code: str
    rng: random.Random
    setpoint_c: float = -55.0
    limit_c: float = -40.0
    dew_point_c: float = field(init=False)
    wet_until: float = 0.0
    wet_peak_c: float = 0.0

    def __post_init__(self) -> None:
        self.dew_point_c = self.setpoint_c

    def read(self, now: float) -> dict:
        if now >= self.wet_until:
            long = self.rng.random() < LONG_CHANCE
            if long or self.rng.random() < SHORT_CHANCE:
                self.wet_until = now + self.rng.uniform(*(LONG_S if long else SHORT_S))
                self.wet_peak_c = self.limit_c + self.rng.uniform(3, 12)
        wet = now < self.wet_until
        target = self.wet_peak_c if wet else self.setpoint_c
        # The air follows its target within a few readings, with sensor noise.
        self.dew_point_c += (target - self.dew_point_c) * (0.6 if wet else 0.35)
        self.dew_point_c += self.rng.gauss(0, 0.4)
        return {
            "sensor": self.code,
            "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "dew_point_c": round(self.dew_point_c, 2),
            "temperature_c": round(21.0 + self.rng.gauss(0, 0.25), 2),
            "h2s_ppm": round(
                max(0.0, (0.4 if wet else 0.02) + self.rng.gauss(0, 0.01 if not wet else 0.1)), 3
            ),
        }


def readings_every(
    sensors: list[DewPointSensor], interval_s: float, *, clock=time.time, sleep=time.sleep
) -> Iterator[list[dict]]:
    """Each zone's reading (per sensor) every `interval_s`, on the wall clock."""
    while True:
        now = clock()
        yield [sensor.read(now) for sensor in sensors]
        sleep(max(0.0, interval_s - (clock() - now)))
