"""Throughput of formation.cycler: rows per second for read_cycler_file + formation_features.

Run from the repository root:  python bench/bench_cycler.py [--rows 100000] [--repeat 3]

Measures a generated plain CSV (formation-like: rest, CC-CV charge, rest, CC discharge, repeated)
and every sample file in ../shared/data/cycler/ when that folder exists. Prints the best of
--repeat runs, so the figure is the code's speed rather than a cold disk cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from formation.cycler import formation_features, read_cycler_file  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "cycler"


def write_formation_csv(path: Path, rows: int) -> None:
    """A 1 s log of repeated 1 Ah formation cycles, `rows` rows long."""
    t = np.arange(rows, dtype=np.float64)
    phase = t % 9000.0  # a 2.5 h cycle: 600 s rest, 3600 s CC, 900 s CV, 300 s rest, 3600 s dis
    current = np.zeros(rows)
    voltage = np.full(rows, 3.3)
    cc = (phase >= 600) & (phase < 4200)
    cv = (phase >= 4200) & (phase < 5100)
    dis = (phase >= 5400) & (phase < 9000)
    current[cc] = 1.0
    voltage[cc] = 3.3 + 0.9 * (phase[cc] - 600) / 3600
    current[cv] = 1.0 - 0.9 * (phase[cv] - 4200) / 900
    voltage[cv] = 4.2
    voltage[(phase >= 5100) & (phase < 5400)] = 4.1
    current[dis] = -1.0
    voltage[dis] = 4.1 - 1.1 * (phase[dis] - 5400) / 3600
    temperature = 25.0 + 2.0 * np.abs(current)
    step = np.searchsorted([600, 4200, 5100, 5400], phase, side="right") + 1
    table = np.column_stack([t, step, voltage, current, temperature])
    np.savetxt(
        path,
        table,
        delimiter=",",
        fmt=["%.1f", "%d", "%.5f", "%.5f", "%.2f"],
        header="Time(s),Step,Voltage(V),Current(A),Temperature(C)",
        comments="",
    )


def measure(path: Path, repeat: int) -> tuple[int, float, float]:
    """(rows, best read seconds, best read+features seconds)."""
    best_read = best_total = float("inf")
    rows = 0
    for _ in range(repeat):
        start = time.perf_counter()
        data = read_cycler_file(path)
        read_done = time.perf_counter()
        formation_features(data)
        end = time.perf_counter()
        rows = data.rows
        best_read = min(best_read, read_done - start)
        best_total = min(best_total, end - start)
    return rows, best_read, best_total


def report(label: str, rows: int, read_s: float, total_s: float) -> None:
    print(
        f"{label:<40} {rows:>8} rows  read {read_s * 1000:8.1f} ms  "
        f"read+features {total_s * 1000:8.1f} ms  {rows / total_s:>12,.0f} rows/s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        generated = Path(scratch) / "formation.csv"
        write_formation_csv(generated, args.rows)
        report(f"generated CSV ({args.rows:,} rows)", *measure(generated, args.repeat))
    if SAMPLES.is_dir():
        for path in sorted(SAMPLES.iterdir()):
            if path.is_file() and path.name != "README.md":
                report(path.name, *measure(path, args.repeat))
    else:
        print(f"(no sample folder at {SAMPLES})")


if __name__ == "__main__":
    main()
