"""The defect Pareto of the selected results: how often each defect code, or each violated
parameter, occurred, most frequent first, with each one's share and the running share.

A count is of occurrences in the selected runs: a run reporting two defect codes counts once for
each; a run out of spec on two parameters counts once for each parameter (a required parameter
the run left out is a violation of it too). Steps and periods are chosen by the selection's
filters (`step`, `since`, `until`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from batches.models import REPORTS_DEFECTS, REPORTS_VIOLATIONS, ProcessRun
from quality.selection import Selection

# What a Pareto counts: the runs that can have an occurrence (most runs report no defect and no
# violation; the predicate is a partial index's, so only those are read, the selection's
# filters on the same scan), the column read, and the SQL that lists one key per occurrence
# from a relation `r` of those runs.
KINDS: dict[str, tuple[Q, str, str]] = {
    "defect": (Q(REPORTS_DEFECTS), "defects", "SELECT unnest(r.defects) AS key FROM ({runs}) r"),
    "parameter": (
        Q(REPORTS_VIOLATIONS),
        "violations",
        """
        SELECT v ->> 'parameter' AS key
        FROM ({runs}) r,
             jsonb_array_elements(
                 CASE jsonb_typeof(r.violations) WHEN 'array' THEN r.violations ELSE '[]' END
             ) AS v
        """,
    ),
}


@dataclass(frozen=True)
class ParetoRow:
    key: str
    count: int
    share: float
    cumulative_share: float


def pareto(selection: Selection, by: str) -> list[ParetoRow]:
    """The Pareto rows by `by` (a key of KINDS), sorted by count descending, then key."""
    predicate, column, occurrences = KINDS[by]
    runs: QuerySet[ProcessRun] = selection.runs().filter(predicate).order_by().values(column)
    sql, params = runs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT key, count(*) FROM ({occurrences.format(runs=sql)}) occurrences "
            "WHERE key IS NOT NULL GROUP BY key ORDER BY count(*) DESC, key",
            params,
        )
        counts = cursor.fetchall()
    total = sum(count for _, count in counts)
    rows, running = [], 0
    for key, count in counts:
        running += count
        rows.append(ParetoRow(key, count, count / total, running / total))
    return rows
