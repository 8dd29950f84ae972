"""Formation cycler files into step results: the bridge between the Django-free cycler package
and the step engine. A file that cannot be trusted raises CyclerFileRejected (the station's
upload ends rejected with the check's name); a sound file is applied and judged like any result.

What a file becomes (see formation.cycler.report for each definition):
* measurements: the first (formation) cycle's capacities, energies and ratios, each only from a
  complete half cycle, the flags first_charge_complete / first_discharge_complete, summaries over
  all cycles (cycles, capacity_retention_last, later_coulombic_efficiency...), dQ/dV peaks, and
  the file checks (voltage range, temperature, gaps, soft shorts);
* curves: voltage and current against time, voltage against capacity per cycle, the first
  cycle's dQ/dV against voltage, and the per-cycle values against the cycle number.

When it ran: the file's own clock where it has one (BioLogic's acquisition start, Neware's record
clock, an Arbin or Maccor date-time column): the run starts at its first row and finishes at its
last. A clock without a zone is the plant's local time (settings.TIME_ZONE). A file without a
clock, or whose clock puts its end outside what the intake accepts for any result (from
2000-01-01 to one day after receipt), is dated by its receipt, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from batches.services import StepResult
from formation.cycler import (
    CyclerData,
    CyclerFileRejected,
    analyse,
    format_named,
    formation_curves,
    formation_features,
    read_cycler_file,
)
from formation.storage import local_copy

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # the intake's window for a result's time
LATEST_AFTER_RECEIPT = timedelta(days=1)


@dataclass(frozen=True)
class CyclerFileResult:
    """A cycler file read: the step result it makes, which parser read it in which format, and
    whether the run's times came from the file's clock ("file") or its receipt ("receipt")."""

    result: StepResult
    parser: str
    detected_format: str
    timed_by: str = "receipt"


def run_times(data: CyclerData, received: datetime) -> tuple[datetime | None, datetime, str]:
    """(started_at, finished_at, "file" or "receipt") for a file received at `received`."""
    start = data.started_at
    if start is None or data.rows == 0:
        return None, received, "receipt"
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    finish = start + timedelta(seconds=float(data.time_s[-1] - data.time_s[0]))
    if start < EARLIEST or finish > received + LATEST_AFTER_RECEIPT:
        return None, received, "receipt"
    return start, finish, "file"


def cycler_file_result(
    payload: Mapping[str, Any], *, event_id: str, occurred_at: datetime
) -> CyclerFileResult:
    """Read the uploaded file that `payload` (an upload's stored fields) names; `occurred_at` is
    when it was received, the run's time when the file carries no clock of its own."""
    # A format the station named is used; without one it is detected from the content.
    try:
        with local_copy(payload["path"]) as path:
            data = read_cycler_file(path, format=format_named(payload.get("format", "")))
    except FileNotFoundError as exc:  # recorded, but nothing stored under its name
        raise CyclerFileRejected("unreadable", f"cannot open {payload['path']}: {exc}") from exc
    analysis = analyse(data)
    features = formation_features(analysis)
    features.pop("rows", None)
    curves = {
        curve.name: {
            "t_s": [float(x) for x in curve.x],
            "values": [float(y) for y in curve.y],
            "unit": curve.unit,
            "x_name": curve.x_name,
            "x_unit": curve.x_unit,
        }
        for curve in formation_curves(analysis)
    }
    started_at, finished_at, timed_by = run_times(data, occurred_at)
    result = StepResult(
        occurred_at=finished_at,
        started_at=started_at,
        measurements={name: float(value) for name, value in features.items()},
        curves=curves,
        event_id=event_id,
    )
    return CyclerFileResult(
        result, parser=data.parser, detected_format=data.format, timed_by=timed_by
    )
