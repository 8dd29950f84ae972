"""read_cycler_file: detect the format from the bytes, parse with a well-kept library, normalise.

Binary formats are parsed by their maintained libraries (galvani for BioLogic .mpr, fastnda for
Neware .nda/.ndax, openpyxl for Arbin .xlsx); text exports (Arbin CSV, Maccor, plain CSV, EC-Lab
.mpt) are streamed by formation.cycler.text in chunks, so their memory is their numeric columns. Whatever a parser raises is caught here
and turned into a CyclerFileRejected carrying the library's own message.

Units and signs per binary format, as the libraries document them and the samples show:
* BioLogic .mpr (galvani) and .mpt: see formation.cycler.biologic for the columns the current is
  taken or derived from (I/mA, dq/mA.h, (Q-Qo)/mA.h, Q charge/discharge/mA.h, control/V/mA...).
* Neware .nda/.ndax (fastnda): total_time_s in s, voltage_V in V, current_mA in mA. The raw files
  store unsigned current; fastnda signs it from the step type (CC_DChg etc. negative), so charge
  is positive (sample: +0.12 mA in CCCV_Chg, -0.12 mA in CCCV_DChg). Only mA -> A.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from .biologic import (
    MPT_MAGIC,
    BiologicColumns,
    biologic_columns,
    mpr_acquisition_start,
    mpr_columns,
    mpr_is_ocv,
    read_mpt,
)
from .data import CyclerData
from .errors import CyclerFileRejected
from .features import current_state, half_cycle_runs
from .text import TEXT_PARSER, classify_text, decode, parse_wall_clock, read_text_export
from .xlsx import read_arbin_xlsx

FORMATS = (
    "biologic_mpr",
    "biologic_mpt",
    "neware_nda",
    "neware_ndax",
    "arbin_csv",
    "arbin_xlsx",
    "maccor_txt",
    "csv",
)
# The short names equipment sends with an upload, for the formats above. "arbin" names the
# vendor: whether its export is CSV or XLSX is read from the bytes (see read_cycler_file).
FORMAT_ALIASES = {
    "mpr": "biologic_mpr",
    "mpt": "biologic_mpt",
    "nda": "neware_nda",
    "ndax": "neware_ndax",
    "arbin": "arbin_csv",
    "maccor": "maccor_txt",
}
# Every name an upload may give a format.
FORMAT_NAMES = (*FORMATS, *FORMAT_ALIASES)
# A file's suffix says its format only where the suffix is the vendor's own (a .csv or .txt may
# hold any text export: those are detected from the content).
FORMAT_BY_SUFFIX = {
    ".mpr": "biologic_mpr",
    ".mpt": "biologic_mpt",
    ".nda": "neware_nda",
    ".ndax": "neware_ndax",
    ".xlsx": "arbin_xlsx",
}
TEXT_FORMATS = frozenset({"arbin_csv", "maccor_txt", "csv", "biologic_mpt"})
ARBIN_FORMATS = frozenset({"arbin_csv", "arbin_xlsx"})


def format_named(name: str) -> str | None:
    """The format an upload names (ours or a short name), or None for one we do not know."""
    return name if name in FORMATS else FORMAT_ALIASES.get(name)


MPR_MAGIC = b"BIO-LOGIC MODULAR FILE\x1a"  # galvani.BioLogic.MPR_MAGIC starts with this
NDA_MAGIC = b"NEWARE"  # fastnda.nda checks these six bytes
ZIP_MAGIC = b"PK\x03\x04"
ZIP_END = b"PK\x05\x06"  # end-of-central-directory record: a zip's index, written last
SNIFF_BYTES = 1 << 20
_MAGIC = {
    "biologic_mpr": MPR_MAGIC,
    "neware_nda": NDA_MAGIC,
    "neware_ndax": ZIP_MAGIC,
    "arbin_xlsx": ZIP_MAGIC,
}


def _library(name: str) -> str:
    """'galvani 0.5.0': the library and the version actually installed."""
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return f"{name} (version unknown)"


def _one_line(message: object) -> str:
    return re.sub(r"\s+", " ", str(message)).strip()


def detect_format(head: bytes, file_name: str) -> str:
    """The format of a file from its first bytes; never from its name."""
    if head.startswith(MPR_MAGIC):
        return "biologic_mpr"
    if head.startswith(NDA_MAGIC):
        return "neware_nda"
    if head.startswith(ZIP_MAGIC):
        # A Neware .ndax is a zip of data.ndc, Step.xml, TestInfo.xml...; the local file headers
        # name the members in the clear, so the first MiB shows them even if the index is cut off.
        if b"data.ndc" in head or (b"Step.xml" in head and b".ndc" in head):
            return "neware_ndax"
        if b"xl/workbook.xml" in head or b"[Content_Types].xml" in head and b"xl/" in head:
            return "arbin_xlsx"
        raise CyclerFileRejected(
            "unknown_format",
            f"{file_name} is a zip archive but holds no Neware data.ndc nor an Excel workbook "
            f"in its first {len(head)} bytes: not a cycler file we read",
        )
    if b"\x00" in head[:65536]:
        offset = head.index(b"\x00")
        raise CyclerFileRejected(
            "unknown_format",
            f"{file_name} is binary (NUL byte at offset {offset}) and starts with "
            f"{head[:16]!r}, which is no BioLogic .mpr or Neware .nda/.ndax signature",
        )
    if head.startswith(MPT_MAGIC):
        return "biologic_mpt"
    lines = decode(head).splitlines()
    if lines and "time/s" in lines[0].split("\t") and "Ewe/V" in lines[0]:
        return "biologic_mpt"  # an EC-Lab export saved without its header block
    kind = classify_text(lines)
    if kind is None:
        first = lines[0][:80] if lines else ""
        raise CyclerFileRejected(
            "unknown_format",
            f"{file_name} is text but no line among its first 40 names a time, voltage or "
            f"current column (line 1 reads {first!r})",
        )
    return kind


def read_cycler_file(path: str | Path, *, format: str | None = None) -> CyclerData:
    """Read one cycler file into :class:`CyclerData`, or raise :class:`CyclerFileRejected`.

    ``format`` is one of FORMATS; None detects it from the content (magic bytes, header line),
    so a renamed file is still read as what it is. A format name outside FORMATS is a
    programming error (ValueError), not a rejected file.
    """
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)} or None, not {format!r}")
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise CyclerFileRejected("unreadable", f"cannot open {name}: {_one_line(exc)}") from exc
    if size == 0 or not head.strip():
        raise CyclerFileRejected("empty", f"{name} is empty ({size} bytes)")
    if format is None:
        format = detect_format(head, name)
    elif format in ARBIN_FORMATS:
        # The station names the vendor; the container (CSV text or an XLSX zip) is in the bytes.
        format = "arbin_xlsx" if head.startswith(ZIP_MAGIC) else "arbin_csv"
    if format in _MAGIC and not head.startswith(_MAGIC[format]):
        raise CyclerFileRejected(
            "unreadable",
            f"{name} was given as {format} but does not start with that format's signature "
            f"{_MAGIC[format]!r} (it starts with {head[:16]!r})",
        )
    elif format in TEXT_FORMATS and b"\x00" in head[:65536]:
        raise CyclerFileRejected(
            "unreadable",
            f"{name} was given as {format} but is binary (NUL byte at offset {head.index(0)})",
        )
    try:
        if format == "biologic_mpr":
            return _read_mpr(path, size)
        if format in ("neware_nda", "neware_ndax"):
            return _read_neware(path, size, head, format)
        if format == "biologic_mpt":
            return _read_mpt(path, head)
        if format == "arbin_xlsx":
            table = read_arbin_xlsx(path)
            parser = _library("openpyxl")
        else:
            table = read_text_export(path, head)
            parser = TEXT_PARSER
    except CyclerFileRejected:
        raise
    except Exception as exc:  # any parser failure is a rejected file, never a crash
        raise CyclerFileRejected(
            "unreadable",
            f"{name} could not be parsed as {format}: {type(exc).__name__}: {_one_line(exc)}",
        ) from exc
    return _finish(
        name,
        format,
        parser,
        table.time_s,
        table.voltage_v,
        table.current_a,
        table.step,
        table.cycle,
        table.temperature_c,
        table.row_label,
        started_at=table.started_at,
    )


def _record_label(k: int) -> str:
    return f"record {k + 1}"


def _finish(
    name: str,
    format: str,
    parser: str,
    time_s: np.ndarray,
    voltage_v: np.ndarray,
    current_a: np.ndarray,
    step: np.ndarray | None,
    cycle: np.ndarray | None,
    temperature_c: np.ndarray | None,
    label: Callable[[int], str] = _record_label,
    *,
    started_at: datetime | None = None,
) -> CyclerData:
    """Shared trust checks, then derive what the file lacks and build the CyclerData."""
    time_s = np.asarray(time_s, dtype=np.float64)
    voltage_v = np.asarray(voltage_v, dtype=np.float64)
    current_a = np.asarray(current_a, dtype=np.float64)
    rows = time_s.size
    if rows == 0:
        raise CyclerFileRejected("empty", f"{name} ({format}) holds no data records")
    for what, values in (("time", time_s), ("voltage", voltage_v), ("current", current_a)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise CyclerFileRejected(
                "unreadable", f"{name}: {what} at {label(int(bad[0]))} is {values[bad[0]]!r}"
            )
    # Time may repeat (Neware and Maccor write a step's first row at the previous row's time)
    # but may never go back: that is a merged, reordered or clock-reset file.
    backwards = np.flatnonzero(np.diff(time_s) < 0)
    if backwards.size:
        k = int(backwards[0]) + 1
        raise CyclerFileRejected(
            "time_not_monotonic",
            f"{name}: time goes backwards at {label(k)}: {time_s[k]:g} s after "
            f"{time_s[k - 1]:g} s at {label(k - 1)}",
        )
    if step is None:
        step = _derive_steps(current_state(current_a))
    if cycle is None:
        cycle = _derive_cycles(time_s, current_a)
    return CyclerData(
        time_s=time_s,
        voltage_v=voltage_v,
        current_a=current_a,
        step=np.asarray(step, dtype=np.int64),
        cycle=np.asarray(cycle, dtype=np.int64),
        temperature_c=None if temperature_c is None else np.asarray(temperature_c, np.float64),
        format=format,
        parser=parser,
        rows=rows,
        started_at=started_at,
    )


def _derive_steps(state: np.ndarray) -> np.ndarray:
    """Step 1, 2, ...: a new step wherever the row changes between charge, discharge and rest."""
    return np.cumsum(np.r_[True, state[1:] != state[:-1]]).astype(np.int64)


def _derive_cycles(time_s: np.ndarray, current_a: np.ndarray) -> np.ndarray:
    """Cycle 1, 2, ...: a new cycle starts with each charge half cycle that follows a discharge,
    except the first charge, so that a partial discharge before the first charge (from the
    as-built state) belongs to cycle 1 with the formation charge and discharge."""
    cycle = np.ones(time_s.size, dtype=np.int64)
    signs, first, _, _ = half_cycle_runs(time_s, current_a)
    charges = np.flatnonzero(signs > 0)
    if charges.size < 2:
        return cycle
    boundaries = first[charges[1:]]  # half cycles alternate, so each follows a discharge
    return cycle + np.searchsorted(boundaries, np.arange(time_s.size), side="right")


def _read_mpr(path: Path, size: int) -> CyclerData:
    from galvani import BioLogic

    parser = _library("galvani")
    name = path.name
    try:
        with path.open("rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mpr = BioLogic.MPRfile(handle)  # given a file object, galvani reads and never closes
            columns = mpr_columns(mpr)
    except OSError as exc:
        # galvani reads each module's declared length; a short read means the file was cut.
        raise CyclerFileRejected(
            "truncated",
            f"{name} ends at byte {size}, inside a module: {parser} reports: {_one_line(exc)}",
        ) from exc
    except Exception as exc:
        raise CyclerFileRejected(
            "unreadable",
            f"{name}: {parser} could not parse it: {type(exc).__name__}: {_one_line(exc)}",
        ) from exc
    data = biologic_columns(columns, file_name=name, ocv_technique=mpr_is_ocv(mpr))
    start = mpr_acquisition_start(mpr)
    if start is not None and data.time_s.size:
        start = start + timedelta(seconds=float(data.time_s[0]))  # time/s counts from it
    return _biologic_data(name, "biologic_mpr", parser, data, start)


def _read_mpt(path: Path, head: bytes) -> CyclerData:
    data, start = read_mpt(path, head)
    return _biologic_data(path.name, "biologic_mpt", TEXT_PARSER, data, start)


def _biologic_data(
    name: str, format: str, parser: str, data: BiologicColumns, start: datetime | None
) -> CyclerData:
    return _finish(
        name,
        format,
        parser,
        data.time_s,
        data.voltage_v,
        data.current_a,
        data.step,
        data.cycle,
        data.temperature_c,
        started_at=start,
    )


def _read_neware(path: Path, size: int, head: bytes, format: str) -> CyclerData:
    import fastnda

    parser = _library("fastnda")
    name = path.name
    suffix = ".ndax" if format == "neware_ndax" else ".nda"
    if format == "neware_ndax":
        with path.open("rb") as handle:
            handle.seek(max(0, size - 65536 - 22))
            tail = handle.read()
        if ZIP_END not in tail:
            raise CyclerFileRejected(
                "truncated",
                f"{name} ends at byte {size} without the zip end-of-central-directory record "
                "a complete .ndax ends with: the file was cut short",
            )
    # fastnda picks its reader from the file suffix; a renamed file is read through a link (or
    # copy) that carries the suffix its content calls for.
    with tempfile.TemporaryDirectory(prefix="cycler-") as scratch:
        source = path
        if path.suffix.lower() != suffix:
            source = Path(scratch) / f"upload{suffix}"
            try:
                os.symlink(path.resolve(), source)
            except OSError:
                shutil.copyfile(path, source)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = fastnda.read(source)
        except (EOFError, zipfile.BadZipFile) as exc:
            raise CyclerFileRejected(
                "truncated",
                f"{name} ({size} bytes) is cut short: {parser} reports: "
                f"{type(exc).__name__}: {_one_line(exc)}",
            ) from exc
        except Exception as exc:
            raise CyclerFileRejected(
                "unreadable",
                f"{name}: {parser} could not parse it: {type(exc).__name__}: {_one_line(exc)}",
            ) from exc
    columns = frame.columns
    missing = [c for c in ("total_time_s", "voltage_V", "current_mA") if c not in columns]
    if missing:
        raise CyclerFileRejected(
            "missing_columns",
            f"{name}: {parser} found no {' or '.join(missing)} (columns: {', '.join(columns)})",
        )

    def column(col: str) -> np.ndarray:
        return frame[col].cast(float).to_numpy()

    temperature = next((c for c in columns if "temperature" in c.lower()), None)
    started = None
    if "unix_time_s" in columns and frame.height:
        # fastnda gives the record's clock as Unix seconds (from the file's own time stamps, or
        # the test's start plus test time where the format has no per-record clock).
        started = parse_wall_clock(float(frame["unix_time_s"][0]))
    return _finish(
        name,
        format,
        parser,
        column("total_time_s"),
        column("voltage_V"),
        column("current_mA") / 1000.0,  # mA -> A; fastnda already signs discharge negative
        column("step_index").astype(np.int64) if "step_index" in columns else None,
        column("cycle_count").astype(np.int64) if "cycle_count" in columns else None,
        column(temperature) if temperature else None,
        started_at=started,
    )
