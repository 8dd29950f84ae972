"""Cycler files -> formation measurements. Plain Python (numpy, galvani, fastnda); no Django.

Use::

    data = read_cycler_file(path)  # CyclerData, or raises CyclerFileRejected
    features = formation_features(data)  # {"first_charge_capacity_ah": ..., ...}
    q, v = voltage_capacity_curve(data)  # first charge + discharge, downsampled for a plot
    t, v = downsample_curve(data.time_s, data.voltage_v)
"""

from __future__ import annotations

from .data import CyclerData
from .errors import CHECKS, CyclerFileRejected
from .features import (
    HalfCycle,
    downsample_curve,
    formation_features,
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

__all__ = [
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
