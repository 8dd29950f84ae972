"""Formation cycler files into step results: the bridge between the Django-free cycler package
and the step engine. A file that cannot be trusted raises CyclerFileRejected (the station's
upload ends rejected with the check's name); a sound file is applied and judged like any result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from batches.services import StepResult
from formation.cycler import (
    downsample_curve,
    format_named,
    formation_features,
    read_cycler_file,
    voltage_capacity_curve,
)

CURVE_POINTS = 2000  # enough for the cell page's plots, a few kB per curve


@dataclass(frozen=True)
class CyclerFileResult:
    """A cycler file read: the step result it makes, and which parser read it in which format."""

    result: StepResult
    parser: str
    detected_format: str


def cycler_file_result(
    payload: Mapping[str, Any], *, event_id: str, occurred_at: datetime
) -> CyclerFileResult:
    """Read the uploaded file that `payload` (an upload's stored fields) names."""
    # A format the station named is used; without one it is detected from the content.
    data = read_cycler_file(
        Path(settings.MEDIA_ROOT) / payload["path"], format=format_named(payload.get("format", ""))
    )
    features = formation_features(data)
    features.pop("rows", None)
    t, v = downsample_curve(data.time_s, data.voltage_v, max_points=CURVE_POINTS)
    q, vq = voltage_capacity_curve(data)
    curves = {
        "voltage": {"t_s": [float(x) for x in t], "values": [float(y) for y in v], "unit": "V"},
        "voltage_vs_capacity": {
            "t_s": [float(x) for x in q],
            "values": [float(y) for y in vq],
            "unit": "V",
            "x_name": "capacity_ah",
            "x_unit": "Ah",
        },
    }
    result = StepResult(
        occurred_at=occurred_at,
        measurements={name: float(value) for name, value in features.items()},
        curves=curves,
        event_id=event_id,
    )
    return CyclerFileResult(result, parser=data.parser, detected_format=data.format)
