"""Low-ICE outliers hold the batch: ICE below the batch centre - `sigma` x sigma in `cells` cells.

Centre and sigma are the median and 1.4826 x MAD: with the plain mean and standard deviation, two
low cells in a batch of twenty inflate sigma so much that they can never be 3 sigma out. Judged
once the batch has `min_cells` formation results.
"""

from __future__ import annotations

import statistics

from django.utils.translation import gettext_lazy as _

from batches.hooks import StepApplied
from batches.models import Hold, HoldRule, Measurement
from batches.services import hold_batch
from lines.models import StationKind
from quality.rules.registry import RULES, Threshold, open_hold_for, rule

CODE = "formation_ice_outliers"
ICE = "initial_coulombic_efficiency"


@rule(
    CODE,
    label=_("Low-ICE outliers hold the batch"),
    holds=Hold.Scope.BATCH,
    applies=lambda step: step.run.station.kind == StationKind.FORMATION,
    thresholds={
        "sigma": Threshold(float, 3),
        "cells": Threshold(int, 2),
        "min_cells": Threshold(int, 8),
    },
)
def formation_ice_outliers(version: HoldRule, step: StepApplied) -> None:
    batch = step.run.cell.batch
    if open_hold_for(version, Hold.Scope.BATCH, batch.code):
        return
    values = dict(
        Measurement.objects.filter(
            run__cell__batch=batch, run__station__kind=StationKind.FORMATION, name=ICE
        )
        .order_by("run__cell_id", "run__finished_at")
        .values_list("run__cell__serial", "value")
    )  # the latest formation result of each cell wins
    declared = RULES[CODE]
    if len(values) < declared.threshold(version, "min_cells"):
        return
    centre = statistics.median(values.values())
    sigma = 1.4826 * statistics.median(abs(v - centre) for v in values.values())
    if sigma == 0:
        return
    k = declared.threshold(version, "sigma")
    limit = centre - k * sigma
    low = sorted(serial for serial, value in values.items() if value < limit)
    if len(low) >= declared.threshold(version, "cells"):
        hold_batch(
            batch,
            by=version.label,
            rule=version,
            found_at=step.run.step.station_kind,
            reason=f"ICE below {limit:.4f} (median - {k:g} sigma) "
            f"in {len(low)} cells: {', '.join(low[:10])}; trace to press cycle and SE lot",
        )
