"""First-pass yield, rolled throughput yield, scrap and rework rates over the selected results.

Every figure counts cells, aggregated by PostgreSQL; the selection (quality.selection) says which
results count. The definitions, per kind of row:

**At a step** (`by=step`, the key is the station kind):
- started: cells whose *first* result at that step (in the whole record) is selected. A filter on
  equipment, recipe version or time thus counts the cells that started the step there, and a
  rework done on other equipment or later stays with the cell's first attempt.
- first_pass: of those, the cells whose first result there passed; failed: whose first result
  there failed (first_pass + failed = started).
- reworked: of those, the cells with more than one result at that step (a rework re-ran it).
- scrapped: of those, the cells now scrapped whose last result (in the whole record) was at that
  step: the step they were scrapped after.
- fpy = first_pass / started.

**Per batch, day or line** (`by=batch|day|line`): each cell counted at any step (as above) is
counted once, in one row: its batch, its line, or the day (in the plant's time zone,
settings.TIME_ZONE) of its earliest counted first result.
- started: those cells; first_pass: the cells whose first result at every counted step passed;
  failed: the others (a first result failed at some step); reworked: the cells with more than one
  result at some counted step; scrapped: the cells now scrapped. fpy = first_pass / started.

Every row also has scrap_rate = scrapped / started and rework_rate = reworked / started, and the
whole selection's figures come as one more such row (`total`, counted per cell). RTY, the rolled
throughput yield, is the product of the steps' FPY (null when no step has a cell).

Rows per cell (batch, day, line) add up, so a grouping whose key PostgreSQL cannot compute alone
(a shift from the line's calendar, say) is one more `CellBucket`: an SQL key fine enough to be
regrouped (the local hour of the first result) and a `key` function mapping it to the row's key;
rows that map to the same key are summed.

The same rows add up per batch (a cell belongs to one batch): a selection of lines, batches and
designs only, whose batches' results count whole, sums each batch's figures as the database
computed and stored them (quality.BatchYield, migration 0006), forgotten in the transaction that
changes any of their inputs; any other selection counts from the cell steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from math import prod
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F

from batches.models import Batch, Cell, ProcessRun
from lines.models import Line, RouteStep
from lines.selectors import KIND_ORDER
from quality.models import BatchYield, YieldEpoch
from quality.selection import Selection


@dataclass
class YieldRow:
    key: str
    started: int = 0
    first_pass: int = 0
    failed: int = 0
    reworked: int = 0
    scrapped: int = 0

    @property
    def fpy(self) -> float | None:
        return self.first_pass / self.started if self.started else None

    @property
    def scrap_rate(self) -> float | None:
        return self.scrapped / self.started if self.started else None

    @property
    def rework_rate(self) -> float | None:
        return self.reworked / self.started if self.started else None

    def add(self, other: YieldRow) -> None:
        self.started += other.started
        self.first_pass += other.first_pass
        self.failed += other.failed
        self.reworked += other.reworked
        self.scrapped += other.scrapped


@dataclass
class YieldReport:
    by: str
    rows: list[YieldRow]
    steps: list[YieldRow]
    total: YieldRow = field(default_factory=lambda: YieldRow("total"))

    @property
    def rty(self) -> float | None:
        """Rolled throughput yield: the product of the steps' first-pass yields."""
        if not self.steps:
            return None
        return prod(row.fpy for row in self.steps)


@dataclass(frozen=True)
class CellBucket:
    """A grouping of cells: `sql`, an expression over the per-cell relation `p` (columns
    cell_id, first_at, first_pass, reworked), the cell `c`, its batch `b` and line `l`, with
    its parameters; `key` turns the value into the row's key."""

    sql: str
    params: Callable[[], list[Any]] = list
    key: Callable[[Any], str] = str


CELL_BUCKETS: dict[str, CellBucket] = {
    "batch": CellBucket("b.code"),
    "line": CellBucket("l.code"),
    "day": CellBucket(
        "(p.first_at AT TIME ZONE %s)::date",
        params=lambda: [settings.TIME_ZONE],
        key=date.isoformat,
    ),
}
BY = ("step", *CELL_BUCKETS)

_RUN, _STEP = ProcessRun._meta.db_table, RouteStep._meta.db_table
_CELL, _BATCH, _LINE = Cell._meta.db_table, Batch._meta.db_table, Line._meta.db_table
_SCRAPPED = Cell.Status.SCRAPPED.value

# The (cell, step) pairs whose first result is selected, from the results summed per cell and
# step (batches.CellStep): the first one's time and verdict, and how many there are. `counted`
# is Selection.cell_steps(): the filters read the first run's columns copied onto those rows.
_COUNTED = """
WITH counted AS ({selected})
"""

_BY_STEP = f"""{_COUNTED},
steps AS (
    SELECT step,
           count(*) AS started,
           count(*) FILTER (WHERE first_passed) AS first_pass,
           count(*) FILTER (WHERE NOT first_passed) AS failed,
           count(*) FILTER (WHERE results > 1) AS reworked
    FROM counted GROUP BY step
),
-- Scrapped cells are a few in a hundred: their counted rows, found from the cells (the partial
-- index of scrapped cells, then one row per cell and step), and each one's last step, from its
-- results. Kept apart from the count of every row above, which then needs no join.
scrapped_counted AS ({{scrapped}}),
scrapped_after AS (
    SELECT DISTINCT ON (r.cell_id) r.cell_id, st.station_kind AS step
    FROM {_CELL} c
    JOIN {_RUN} r ON r.cell_id = c.id
    JOIN {_STEP} st ON st.id = r.step_id
    WHERE c.status = '{_SCRAPPED}'
    ORDER BY r.cell_id, r.finished_at DESC, r.id DESC
),
scrapped AS (
    SELECT a.step, count(*) AS scrapped
    FROM scrapped_counted a
    JOIN scrapped_after s ON s.cell_id = a.cell_id AND s.step = a.step
    GROUP BY a.step
)
SELECT step, started, first_pass, failed, reworked, coalesce(scrapped, 0)
FROM steps LEFT JOIN scrapped USING (step)
"""

# The whole selection's figures alone (`by=step`): per cell as below, but counted as distinct
# cells (a cell fails when one of its counted first results failed, is reworked when one of its
# counted steps has more than one result), which needs no per-cell rows and no join.
_TOTAL = f"""{_COUNTED}
SELECT count(DISTINCT cell_id),
       count(DISTINCT cell_id) FILTER (WHERE NOT first_passed),
       count(DISTINCT cell_id) FILTER (WHERE results > 1),
       (SELECT count(DISTINCT cell_id) FROM ({{scrapped}}) scrapped_counted)
FROM counted
"""

_BY_CELL = f"""{_COUNTED},
per_cell AS (
    SELECT cell_id, min(first_at) AS first_at,
           bool_and(first_passed) AS first_pass, bool_or(results > 1) AS reworked
    FROM counted GROUP BY cell_id
),
keyed AS (
    SELECT {{key}} AS key, p.*, c.status = '{_SCRAPPED}' AS scrapped
    FROM per_cell p
    JOIN {_CELL} c ON c.id = p.cell_id
    JOIN {_BATCH} b ON b.id = c.batch_id
    JOIN {_LINE} l ON l.id = b.line_id
)
SELECT key,
       grouping(key) = 1,
       count(*),
       count(*) FILTER (WHERE first_pass),
       count(*) FILTER (WHERE NOT first_pass),
       count(*) FILTER (WHERE reworked),
       count(*) FILTER (WHERE scrapped)
FROM keyed
GROUP BY GROUPING SETS ((key), ())
ORDER BY min(first_at), key
"""


def _route_order(row: YieldRow) -> tuple[int, str]:
    """A step's row's place: in route order (lines.selectors.KIND_ORDER), unknown kinds last."""
    return KIND_ORDER.get(row.key, len(KIND_ORDER)), row.key


def yield_report(selection: Selection, by: str = "step") -> YieldReport:
    """The yield figures of the selected results, a row per step, batch, day or line (see the
    module's docstring for what each count means), with RTY and the whole selection's total.

    A selection of lines, batches and designs only (each batch's results whole) sums each
    batch's figures as stored (BatchYield, see _from_batch_yields). Any other, two queries: the
    steps' figures (RTY needs them whatever `by` is), then the per-cell figures grouped by `by`
    with the total, or for `by=step`, which reuses the first for its rows, the total alone.
    """
    if by not in BY:
        raise ValueError(f"unknown grouping {by!r}")
    if _by_batch_only(selection) and (report := _from_batch_yields(selection, by)) is not None:
        return report
    return yield_from_results(selection, by)


def yield_from_results(selection: Selection, by: str = "step") -> YieldReport:
    """yield_report's figures always counted from the selected cell steps, never stored ones
    (which must equal these: the tests hold them to it)."""
    if by not in BY:
        raise ValueError(f"unknown grouping {by!r}")
    selected_sql, selected_params = _selected(selection)
    scrapped_sql, scrapped_params = _selected(selection, scrapped=True)
    with connection.cursor() as cursor:
        cursor.execute(
            _BY_STEP.format(selected=selected_sql, scrapped=scrapped_sql),
            [*selected_params, *scrapped_params],
        )
        steps = [YieldRow(*row) for row in cursor.fetchall()]
    steps.sort(key=_route_order)
    if by == "step":
        with connection.cursor() as cursor:
            cursor.execute(
                _TOTAL.format(selected=selected_sql, scrapped=scrapped_sql),
                [*selected_params, *scrapped_params],
            )
            started, failed, reworked, scrapped = cursor.fetchone()
        total = YieldRow("total", started, started - failed, failed, reworked, scrapped)
        return YieldReport(by, steps, steps, total)
    bucket = CELL_BUCKETS[by]
    with connection.cursor() as cursor:
        cursor.execute(
            _BY_CELL.format(selected=selected_sql, key=bucket.sql),
            [*selected_params, *bucket.params()],
        )
        grouped = cursor.fetchall()
    total = YieldRow("total")
    rows: dict[str, YieldRow] = {}
    for value, is_total, *counts in grouped:
        if is_total:
            total = YieldRow("total", *counts)
            continue
        key = bucket.key(value)
        rows.setdefault(key, YieldRow(key)).add(YieldRow(key, *counts))
    return YieldReport(by, list(rows.values()), steps, total)


def _selected(selection: Selection, *, scrapped: bool = False) -> tuple[str, tuple]:
    """The SQL of the counted (cell, step) pairs (columns cell_id, step, first_at,
    first_passed, results), of scrapped cells only if asked, and its parameters, as the ORM
    writes it."""
    rows = selection.cell_steps()
    if scrapped:
        rows = rows.filter(cell__status=Cell.Status.SCRAPPED)
    query = (
        rows.order_by()
        .values("cell_id", "step", "first_at", "first_passed", results=F("passes") + F("fails"))
        .query
    )
    sql, params = query.sql_with_params()
    return sql, tuple(params)


# The filters that keep each batch's results whole (the line: the batch's results at the line's
# stations, which BatchYield keeps per line); any other reads the results themselves.
_WHOLE_BATCH_FILTERS = ("line", "batch", "design")


def _by_batch_only(selection: Selection) -> bool:
    return all(
        getattr(selection, name) in (None, "")
        for name in Selection.__dataclass_fields__
        if name not in _WHOLE_BATCH_FILTERS
    )


# The earliest counted first result orders rows only: as microseconds since 1970, exact, and read
# several times faster than a datetime in the plant's time zone.
_MICROSECONDS = "(extract(epoch FROM y.first_at) * 1000000)::bigint"

# One statement, so one snapshot: each selected batch (`batch`: its design, line, the places of
# its code and its line's code in the database's order, whether its figures are stored and
# current, and exact), then the figures of those batches summed per kind of row and key (the
# steps; the days with by=day; the cells' rows per batch or per the batch's line with
# by=batch|line, else one sum, the total), each with its earliest counted first result. Joined
# to the batches by their key, so the plan stays sound while the table's statistics are stale
# (just filled).
_SUMMED_BATCH_YIELDS = f"""
WITH epoch AS MATERIALIZED (
    SELECT coalesce(max(value), 0) AS value FROM {YieldEpoch._meta.db_table}
)
SELECT 'batch', NULL, b.id, b.design_id, b.line_id,
       rank() OVER (ORDER BY b.code), dense_rank() OVER (ORDER BY l.code),
       (m.exact IS NOT NULL)::integer, coalesce(m.exact, true)::integer, NULL, b.code, l.code
FROM {_BATCH} b
JOIN {_LINE} l ON l.id = b.line_id
-- Each batch's row of its cells, looked up on the unique index: a join would rest on the
-- table's statistics, which say it is empty until PostgreSQL analyzes it after its first fill.
CROSS JOIN LATERAL (
    SELECT (SELECT m.exact FROM {BatchYield._meta.db_table} m
            WHERE m.batch_id = b.id AND m.line_id IS NULL AND m.kind = 'cells' AND m.key = ''
              AND m.zone = %(zone)s AND m.epoch = (SELECT value FROM epoch)) AS exact
) m
WHERE b.id = %(batch)s OR %(batch)s IS NULL
UNION ALL
SELECT y.kind, y.key,
       CASE WHEN y.kind <> 'cells' THEN NULL
            WHEN %(by)s = 'batch' THEN b.id WHEN %(by)s = 'line' THEN b.line_id END,
       sum(y.started), sum(y.first_pass), sum(y.failed), sum(y.reworked), sum(y.scrapped),
       NULL, min({_MICROSECONDS}), NULL, NULL
FROM {BatchYield._meta.db_table} y
JOIN {_BATCH} b ON b.id = y.batch_id
WHERE y.zone = %(zone)s AND y.epoch = (SELECT value FROM epoch)
  AND y.line_id IS NOT DISTINCT FROM %(line)s AND y.kind = ANY(%(kinds)s) AND y.started > 0
  AND (b.id = %(batch)s OR %(batch)s IS NULL)
  AND (b.design_id = %(design)s OR %(design)s IS NULL)
GROUP BY 1, 2, 3
"""

# The rows of batches without, computed now by the database (quality migration 0006), at most
# COMPUTED_AT_ONCE batches a statement: each holds its batches' locks until it commits (in
# autocommit, when it ends), and a writer adding a result to one of them waits that long. A
# year's batches, after a migration or a station moved, are then a few hundred milliseconds
# each, not one statement of several seconds.
COMPUTED_AT_ONCE = 50
_COMPUTED_BATCH_YIELDS = f"""
SELECT y.batch_id, y.line_id, y.kind, y.key, y.exact,
       y.started, y.first_pass, y.failed, y.reworked, y.scrapped, {_MICROSECONDS}
FROM quality_batch_yield(%s::bigint[], %s) y
WHERE (y.line_id IS NOT DISTINCT FROM %s AND y.kind = ANY(%s))
   OR (y.line_id IS NULL AND y.kind = 'cells')
"""


def _from_batch_yields(selection: Selection, by: str) -> YieldReport | None:
    """The report summed from each selected batch's figures (BatchYield): those stored and
    current, summed by PostgreSQL, and the others computed by the database's function
    quality_batch_yield, which stores them unless a writer holds the batch (the locking rule is
    the function's, quality migration 0006). None when a batch's cell steps no longer name its
    cells' batch or its design (the filters would then differ from its rows).

    Rows per batch add up (a cell belongs to one batch): the steps and the total sum the rows of
    the selection's line (or of any line); a batch's row, its line's or a day's sums its
    batches' rows, ordered as the query orders them: by their earliest counted first result,
    then key (codes in the database's order).
    """
    zone = settings.TIME_ZONE
    line_id = selection.line.pk if selection.line else None
    design_id = selection.design.pk if selection.design else None
    kinds = ["step", "cells", *(["day"] if by == "day" else [])]
    with connection.cursor() as cursor:
        cursor.execute(
            _SUMMED_BATCH_YIELDS,
            {
                "by": by,
                "batch": selection.batch.pk if selection.batch else None,
                "zone": zone,
                "line": line_id,
                "kinds": kinds,
                "design": design_id,
            },
        )
        summed = cursor.fetchall()
    # A cells' row's group (by=batch: the batch, by=line: its line) -> its place and its key.
    groups: dict[int, tuple[int, str]] = {}
    batches: dict[int, tuple[int, int]] = {}  # batch -> its design, its group
    missing = []
    for kind, _, batch, design, line, place, line_place, known, exact, _, code, line_code in summed:
        if kind != "batch":
            continue
        if not exact:
            return None
        group = batch if by == "batch" else line
        groups[group] = (place, code) if by == "batch" else (line_place, line_code)
        batches[batch] = (design, group)
        if not known:
            missing.append(batch)

    # (kind, key or group) -> [earliest first result, the figures]
    figures: dict[tuple[str, Any], list] = {}

    def add(kind: str, key: Any, counts: list[int], first_at: int) -> None:
        entry = figures.setdefault((kind, key), [first_at, YieldRow("")])
        entry[0] = min(entry[0], first_at)
        entry[1].add(YieldRow("", *counts))

    for kind, key, group, *counts, _, first_at, _, _ in summed:
        if kind != "batch":
            add(kind, key if group is None else group, counts, first_at)
    with connection.cursor() as cursor:
        for start in range(0, len(missing), COMPUTED_AT_ONCE):
            chunk = missing[start : start + COMPUTED_AT_ONCE]
            cursor.execute(_COMPUTED_BATCH_YIELDS, [chunk, zone, line_id, kinds])
            for batch, row_line, kind, key, exact, *counts, first_at in cursor.fetchall():
                if not exact:
                    return None
                design, group = batches[batch]
                if row_line != line_id or not counts[0] or design_id not in (None, design):
                    continue  # its row of any line under a line's selection, or empty
                grouped = kind == "cells" and by in ("batch", "line")
                add(kind, group if grouped else key, counts, first_at)

    steps = []
    total = YieldRow("total")
    ordered = []  # (earliest first result, place of the key, key, figures)
    for (kind, key), (first_at, counts) in figures.items():
        if kind == "step":
            counts.key = key
            steps.append(counts)
        elif kind == "cells":
            total.add(counts)
            if by in ("batch", "line"):
                ordered.append((first_at, *groups[key], counts))
        elif by == "day":
            ordered.append((first_at, 0, key, counts))  # days apart: their times alone order them
    steps.sort(key=_route_order)
    if by == "step":
        return YieldReport(by, steps, steps, total)
    bucket = CELL_BUCKETS[by]
    rows: dict[str, YieldRow] = {}
    for _, _, value, counts in sorted(ordered, key=lambda entry: entry[:2]):
        key = bucket.key(date.fromisoformat(value) if by == "day" else value)
        rows.setdefault(key, YieldRow(key)).add(counts)
    return YieldReport(by, list(rows.values()), steps, total)
