"""Reads of SPC: the points of one parameter at one step over the quality filters
(quality.selection), grouped into subgroups, charted against the limits in force; the baselines
and settings in force; the capability of every judged parameter of a step.

Specification limits (lsl/usl) and the unit are those stored on the measurements, i.e. the
recipe version each cell was judged against; where versions differ, the latest point's are
taken (the limits the process is run to now).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import F, Q

from batches.models import Batch, Cell, Hold, Measurement, ProcessRun
from lines.models import Line, Station, StationKind
from quality.selection import Selection
from quality.spc import statistics
from quality.spc.models import SpcBaseline, SpcSetting

# The most points one chart shows and judges: the latest ones (the reply says how many earlier
# ones it left out). About two days of a busy step; a longer window is charted in parts (since
# and until). Beyond a few thousand points a chart is a smear, its reply megabytes, and reading
# their cells the larger part of its time.
MAX_POINTS = 5_000

PRESS_CYCLE, BATCH = "press_cycle", "batch"
DEFAULT_SUBGROUP = "5"  # five consecutive cells, the textbook's usual rational subgroup
SPC_SIGNAL = "spc_signal"  # the hold rule's code (quality.rules.spc_signal)


@dataclass(frozen=True)
class SpcPoint:
    """One measurement of the parameter: its value, the cell, when, and its natural subgroups."""

    value: float
    serial: str
    at: str  # occurred_at, RFC 3339
    batch: str = ""
    press_cycle: str = ""  # "PRESS-CODE:cycle-id" of the cell's pressing run, "" if none


@dataclass
class SpcSeries:
    """The points of one parameter in time order, with the limits and unit they were judged to."""

    parameter: str
    points: list[SpcPoint]
    unit: str = ""
    lsl: float | None = None
    usl: float | None = None
    omitted: int = 0  # earlier points beyond MAX_POINTS, left out


@dataclass
class Subgroup:
    label: str
    points: list[SpcPoint]

    @property
    def at(self) -> str:
        return self.points[-1].at  # a subgroup is complete with its last point


@dataclass
class SpcChart:
    """A chart of a parameter over a selection, ready for the API and the pages."""

    selection: Selection
    parameter: str
    kind: str
    subgroup: str  # "" for I-MR
    series: SpcSeries
    chart: statistics.Chart
    subgroups: list[Subgroup] = field(default_factory=list)  # kept ones (X-bar)
    baseline: SpcBaseline | None = None
    setting: SpcSetting | None = None


# ---------------------------------------------------------------- points


def parameter_exists(step: str, parameter: str, line: Line | None = None) -> bool:
    """A measurement of that name was ever recorded at that step (of that line)."""
    rows = Measurement.objects.filter(name=parameter, station__kind=step)
    if line is not None:
        rows = rows.filter(station__line=line)
    return rows.exists()


def spc_series(
    selection: Selection, parameter: str, *, with_press_cycle: bool = False
) -> SpcSeries:
    """The selected points of `parameter` in time order (the runs' finished_at, then id): the
    latest MAX_POINTS of them, and how many earlier ones were left out. The newest are read
    backwards along the parameter's time index, stopping at the limit, with the cells' serials,
    batches and press cycles of those kept only; the others are counted (from the index alone)
    only if the limit was reached."""
    selected = selection.measurements(parameter)
    latest = (
        selected.annotate(at=F("finished_at"))
        .order_by("-finished_at", "-run_id")
        .values_list("value", "unit", "min", "max", "run_id", "cell_id", "at")
    )[:MAX_POINTS]
    sql, params = latest.query.sql_with_params()
    press_cycle = _PRESS_CYCLE if with_press_cycle else "NULL"
    with connection.cursor() as cursor:
        cursor.execute(_POINTS.format(latest=sql, press_cycle=press_cycle), params)
        rows = cursor.fetchall()
    points = []
    for value, _unit, _lsl, _usl, cell, at, press_cycle in rows:
        # A measurement names its cell without a foreign key (batches.Measurement): none is ever
        # deleted, but a point whose cell were gone would chart without a serial, not fail.
        serial, batch = cell or ("", "")
        points.append(
            SpcPoint(value=value, serial=serial, at=at, batch=batch, press_cycle=press_cycle or "")
        )
    omitted = selected.count() - len(rows) if len(rows) == MAX_POINTS else 0
    series = SpcSeries(parameter=parameter, points=points, omitted=omitted)
    if rows:
        series.unit, series.lsl, series.usl = rows[-1][1], rows[-1][2], rows[-1][3]
    return series


# The points kept, oldest first, with their cells' serials and batches. The cell and batch are
# a subquery per point, which is always a probe of each primary key: as a join, PostgreSQL reads
# every cell of the year into a hash for a few thousand points. `at` is written by the database
# as RFC 3339 text (the connection's time zone is UTC): parsing every point's timestamp into a
# datetime only to print it again costs more than the rest of the chart's Python.
_POINTS = f"""
    SELECT m.value, m.unit, m.min, m.max,
           (SELECT ARRAY[cell.serial, batch.code] FROM {Cell._meta.db_table} cell
            JOIN {Batch._meta.db_table} batch ON batch.id = cell.batch_id WHERE cell.id = m.cell_id),
           to_json(m.at) #>> '{{{{}}}}', {{press_cycle}}
    FROM ({{latest}}) m
    ORDER BY m.at, m.run_id
"""
# The press cycle of the measured cell: its latest pressing run's station and cycle id, as
# batches.services.press_cycle_code names it.
_PRESS_CYCLE = f"""(
    SELECT station.code || ':' || pressing.equipment_ref
    FROM {ProcessRun._meta.db_table} pressing
    JOIN {Station._meta.db_table} station ON station.id = pressing.station_id
    WHERE pressing.cell_id = m.cell_id AND station.kind = '{StationKind.PRESSING.value}'
      AND pressing.equipment_ref <> ''
    ORDER BY pressing.finished_at DESC, pressing.id DESC LIMIT 1
)"""


def parse_subgroup(value: str) -> str:
    """`press_cycle`, `batch` or a whole number from 2 to 25; ValueError naming what is wrong."""
    value = (value or DEFAULT_SUBGROUP).strip()
    if value in (PRESS_CYCLE, BATCH):
        return value
    try:
        size = int(value)
    except ValueError:
        raise ValueError(
            "press_cycle, batch, or a number of consecutive cells from "
            f"{statistics.MIN_SUBGROUP} to {statistics.MAX_SUBGROUP}."
        ) from None
    if not statistics.MIN_SUBGROUP <= size <= statistics.MAX_SUBGROUP:
        raise ValueError(
            f"A subgroup of {size} cells: it takes {statistics.MIN_SUBGROUP} to "
            f"{statistics.MAX_SUBGROUP} (the constants' table)."
        )
    return str(size)


def subgroups_of(points: Sequence[SpcPoint], subgroup: str) -> list[Subgroup]:
    """Points grouped by press cycle or batch (in the order each group first appears), or in runs
    of n consecutive points (the last may be shorter). A point without a press cycle is a group
    of its own, which the chart then leaves out."""
    if subgroup in (PRESS_CYCLE, BATCH):
        groups: dict[str, Subgroup] = {}
        alone = 0
        for point in points:
            key = point.press_cycle if subgroup == PRESS_CYCLE else point.batch
            if not key:
                alone += 1
                key = f"\0{alone}"  # never equal to a real code: control characters are refused
            groups.setdefault(key, Subgroup(key, [])).points.append(point)
        return list(groups.values())
    size = int(subgroup)
    return [
        Subgroup(f"{chunk[0].serial}..{chunk[-1].serial}", list(chunk))
        for chunk in (points[i : i + size] for i in range(0, len(points), size))
    ]


# ---------------------------------------------------------------- what is in force


def baseline_in_force(line: Line | None, step: str, parameter: str, chart: str):
    """The latest baseline version of the parameter for that chart, unless it withdrew the
    limits (or there is no line: baselines belong to a line)."""
    if line is None:
        return None
    latest = (
        SpcBaseline.objects.filter(line=line, step=step, parameter=parameter, chart=chart)
        .select_related("frozen_by")
        .order_by("-version")
        .first()
    )
    return None if latest is None or latest.withdrawn else latest


def setting_in_force(line: Line | None, step: str, parameter: str) -> SpcSetting | None:
    if line is None:
        return None
    return (
        SpcSetting.objects.filter(line=line, step=step, parameter=parameter)
        .order_by("-version")
        .first()
    )


def settings_in_force(line: Line, step: str) -> dict[str, SpcSetting]:
    """The latest settings of every parameter of a step that has any. One query."""
    rows = (
        SpcSetting.objects.filter(line=line, step=step)
        .order_by("parameter", "-version")
        .distinct("parameter")
    )
    return {row.parameter: row for row in rows}


def held_parameters() -> dict[tuple[int, str], frozenset[str]]:
    """(line id, step) -> the parameters whose SPC signals hold the cell, from the latest settings.
    One query; the spc_signal rule reads it once per chunk of station results."""
    rows = (
        SpcSetting.objects.order_by("line_id", "step", "parameter", "-version")
        .distinct("line_id", "step", "parameter")
        .values_list("line_id", "step", "parameter", "hold", "rules")
    )
    held: dict[tuple[int, str], set[str]] = {}
    for line_id, step, parameter, hold, rules in rows:
        if hold and rules:
            held.setdefault((line_id, step), set()).add(parameter)
    return {key: frozenset(names) for key, names in held.items()}


def rules_of(setting: SpcSetting | None) -> tuple[int, ...]:
    """The Nelson rules judged for a parameter: its settings', all eight by default."""
    return statistics.ALL_RULES if setting is None else tuple(sorted(setting.rules))


# ---------------------------------------------------------------- charts


def spc_chart(
    selection: Selection,
    parameter: str,
    *,
    kind: str = statistics.IMR,
    subgroup: str = "",
    rules: Iterable[int] | None = None,
) -> SpcChart:
    """The chart of `parameter` over the selection (which names a step): limits from the
    baseline in force for the selection's line, else from the points themselves (phase I);
    Nelson's rules as given, else the parameter's settings'. ValueError where X-bar R meets a
    subgroup larger than the table."""
    line, step = selection.line, selection.step
    subgroup = parse_subgroup(subgroup) if kind != statistics.IMR else ""
    series = spc_series(selection, parameter, with_press_cycle=subgroup == PRESS_CYCLE)
    baseline = baseline_in_force(line, step, parameter, kind)
    setting = setting_in_force(line, step, parameter)
    frozen = statistics.Baseline(baseline.center, baseline.sigma_within) if baseline else None
    judged = rules_of(setting) if rules is None else tuple(rules)
    limits = dict(lsl=series.lsl, usl=series.usl, rules=judged, baseline=frozen)
    groups: list[Subgroup] = []
    if kind == statistics.IMR:
        chart = statistics.imr_chart([p.value for p in series.points], **limits)
    else:
        groups = subgroups_of(series.points, subgroup)
        chart = statistics.xbar_chart(
            [[p.value for p in g.points] for g in groups], kind=kind, **limits
        )
        groups = [g for g in groups if len(g.points) >= 2]
    return SpcChart(
        selection=selection,
        parameter=parameter,
        kind=kind,
        subgroup=subgroup,
        series=series,
        chart=chart,
        subgroups=groups,
        baseline=baseline,
        setting=setting,
    )


def spc_holds(selection: Selection, parameter: str) -> list[Hold]:
    """The holds the spc_signal rule opened on the selected runs for this parameter."""
    return list(
        Hold.objects.filter(
            rule__code=SPC_SIGNAL,
            run__in=selection.runs(),
            reason__contains=signal_reason_prefix(parameter),
        )
        .select_related("rule", "run__cell")
        .order_by("-opened_at")[:200]
    )


def signal_reason_prefix(parameter: str) -> str:
    return f"SPC signal on {parameter}:"


# ---------------------------------------------------------------- capability of a step


@dataclass
class ParameterCapability:
    parameter: str
    unit: str
    n: int
    mean: float | None
    cpk: float | None
    ppk: float | None
    signals: int  # points that complete a pattern of a judged rule
    hold: bool  # signals hold the cell (else they flag)
    baseline: int | None  # the version of the I-MR baseline in force


def step_capability(selection: Selection) -> list[ParameterCapability]:
    """Every judged parameter (one the recipe gave a limit) measured at the selection's step,
    charted I-MR over the selection: worst Cpk first (those without one last). One query for
    the parameters, then per parameter its points, setting and baseline."""
    judged = (
        selection.measurements()
        .filter(Q(min__isnull=False) | Q(max__isnull=False))
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )
    rows = []
    for name in judged:
        chart = spc_chart(selection, name)
        figures = chart.chart
        rows.append(
            ParameterCapability(
                parameter=name,
                unit=chart.series.unit,
                n=figures.n,
                mean=figures.mean,
                cpk=figures.cpk,
                ppk=figures.ppk,
                signals=sum(1 for s in figures.signals if s),
                hold=bool(chart.setting and chart.setting.hold),
                baseline=chart.baseline.version if chart.baseline else None,
            )
        )
    rows.sort(key=lambda r: (r.cpk is None, r.cpk if r.cpk is not None else 0, r.parameter))
    return rows
