"""Where the real sample files are: ../shared/data/cycler beside the checkout, or $CYCLER_SAMPLES
(a worktree sits one folder deeper than the checkout the folder is beside)."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES = Path(
    os.environ.get("CYCLER_SAMPLES")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cycler"
)
