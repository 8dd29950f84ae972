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

from batches.models import ProcessRun
from quality.selection import Selection

_RUN = ProcessRun._meta.db_table

# What a Pareto counts: the SQL that lists one key per occurrence among the selected runs.
KINDS: dict[str, str] = {
    "defect": f"""
        SELECT unnest(r.defects) AS key
        FROM {_RUN} r WHERE r.id IN ({{selected}})
    """,
    "parameter": f"""
        SELECT v ->> 'parameter' AS key
        FROM {_RUN} r,
             jsonb_array_elements(
                 CASE jsonb_typeof(r.violations) WHEN 'array' THEN r.violations ELSE '[]' END
             ) AS v
        WHERE r.id IN ({{selected}})
    """,
}


@dataclass(frozen=True)
class ParetoRow:
    key: str
    count: int
    share: float
    cumulative_share: float


def pareto(selection: Selection, by: str) -> list[ParetoRow]:
    """The Pareto rows by `by` (a key of KINDS), sorted by count descending, then key."""
    sql, params = selection.runs().order_by().values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT key, count(*) FROM ({KINDS[by].format(selected=sql)}) occurrences "
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
