"""The vendor-neutral result of reading one cycler file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays make field-wise == ambiguous
class CyclerData:
    """One cycler file in one set of units and one sign convention.

    Units: seconds, volts, amperes, degrees Celsius. Sign: current is positive while the cell is
    charged and negative while it is discharged, whatever the vendor wrote. ``time_s`` is the
    file's own test-time axis converted to seconds (not rebased to zero: BioLogic files, for one,
    start at the technique's own offset). Arrays are read-only.
    """

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    step: np.ndarray
    cycle: np.ndarray
    temperature_c: np.ndarray | None
    format: str
    parser: str
    rows: int
    # Wall-clock time of the first row, from the file itself (BioLogic's acquisition start plus
    # the first time/s, Neware's record clock, an Arbin or Maccor date-time column). Naive when
    # the file gives the cycler's local clock without a zone; None when the file has no clock.
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("time_s", "voltage_v", "current_a", "temperature_c"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.ascontiguousarray(value, dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name in ("step", "cycle"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.int64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name in ("voltage_v", "current_a", "step", "cycle", "temperature_c"):
            value = getattr(self, name)
            if value is not None and len(value) != len(self.time_s):
                raise ValueError(f"{name} has {len(value)} rows, time_s has {len(self.time_s)}")
        if self.rows != len(self.time_s):
            raise ValueError(f"rows={self.rows} but arrays hold {len(self.time_s)} rows")
