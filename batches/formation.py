"""Formation cycler files into station results: the bridge between the Django-free cycler
package and record_step. A file that cannot be trusted raises CyclerFileRejected (the inbox row
ends rejected with the check's name); a sound file is applied and judged like any result."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from batches.cycler import (
    FORMATS,
    downsample_curve,
    formation_features,
    read_cycler_file,
    voltage_capacity_curve,
)
from batches.models import Cell, InboxEntry
from batches.services import StepResult

CURVE_POINTS = 2000  # enough for the cell page's plots, a few kB per curve


def read_cycler_entry(entry: InboxEntry, cell: Cell) -> StepResult:
    payload = entry.payload
    # A format the station names in our words is used; anything else is detected from the content.
    stated = payload.get("format")
    data = read_cycler_file(
        Path(settings.MEDIA_ROOT) / payload["path"], format=stated if stated in FORMATS else None
    )
    # Which parser, at which version, read the file: kept beside its sha256 on the inbox row.
    entry.payload = {**payload, "parser": data.parser, "detected_format": data.format}
    InboxEntry.objects.filter(pk=entry.pk).update(payload=entry.payload)
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
    return StepResult(
        occurred_at=entry.occurred_at or entry.received_at,
        measurements={name: float(value) for name, value in features.items()},
        curves=curves,
        event_id=entry.event_id,
    )
