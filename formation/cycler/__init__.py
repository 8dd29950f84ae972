"""Cycler files -> formation measurements. Plain Python (numpy, galvani, fastnda); no Django.

Use::

    data = read_cycler_file(path)  # CyclerData, or raises CyclerFileRejected
    analysis = analyse(data)  # half cycles (complete or not), steps, cycles, dQ/dV
    features = formation_features(analysis)  # {"first_charge_capacity_ah": ..., ...}
    curves = formation_curves(analysis)  # V-t, I-t, V-Q per cycle, dQ/dV, per-cycle values
"""

from __future__ import annotations

from .cycles import (
    STEP_KINDS,
    Cycle,
    DqDv,
    ProtocolStep,
    completeness,
    cycle_table,
    dqdv,
    protocol_steps,
    step_labels,
)
from .data import CyclerData
from .errors import CHECKS, CyclerFileRejected
from .features import (
    HalfCycle,
    downsample_curve,
    half_cycles,
    voltage_capacity_curve,
)
from .readers import (
    FORMAT_ALIASES,
    FORMAT_BY_SUFFIX,
    FORMAT_NAMES,
    FORMATS,
    detect_format,
    format_named,
    read_cycler_file,
)
from .report import (
    Analysis,
    CurveData,
    analyse,
    cycle_voltage_capacity,
    formation_curves,
    formation_features,
)

__all__ = [
    "STEP_KINDS",
    "Analysis",
    "Cycle",
    "CurveData",
    "DqDv",
    "ProtocolStep",
    "analyse",
    "completeness",
    "cycle_table",
    "cycle_voltage_capacity",
    "dqdv",
    "formation_curves",
    "protocol_steps",
    "step_labels",
    "CHECKS",
    "FORMATS",
    "FORMAT_ALIASES",
    "FORMAT_BY_SUFFIX",
    "FORMAT_NAMES",
    "format_named",
    "CyclerData",
    "CyclerFileRejected",
    "HalfCycle",
    "detect_format",
    "downsample_curve",
    "formation_features",
    "half_cycles",
    "read_cycler_file",
    "voltage_capacity_curve",
]
