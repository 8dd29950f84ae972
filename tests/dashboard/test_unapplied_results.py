"""Station results the workers did not apply: rejected ones with their reason, and those still
waiting, for the engineers (the station sees the same at its result status)."""

from __future__ import annotations

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from batches import ingestion
from batches.demo_data import nominal_stacking_readings
from batches.messages import StationResultIn
from batches.models import InboxEntry


def _send(station, *results: dict) -> None:
    """Results through the intake and the worker's service, as a station's request would."""
    accepted = ingestion.accept_results(
        station, [msgspec.convert(r, StationResultIn) for r in results]
    )
    ingestion.process_entries(accepted.entry_ids)


def _result(event_id: str, serial: str, measurements: dict) -> dict:
    return {
        "event_id": event_id,
        "cell": serial,
        "occurred_at": timezone.now().isoformat(),
        "measurements": measurements,
    }


@pytest.fixture
def unapplied(proto_batch, stations) -> dict[str, str]:
    """Cell 1 stacked, then stacked again (rejected: wrong step); a result for a serial no cell
    has (rejected: unknown cell); cell 2 pressed before it was stacked (waiting)."""
    first, second = proto_batch.cells.order_by("position")[:2]
    stacking = nominal_stacking_readings(proto_batch.design)
    stacker, press = stations["PR-STK-1"], stations["PR-PRS-1"]
    _send(stacker, _result("stk-1", first.serial, stacking))
    _send(stacker, _result("stk-1-again", first.serial, stacking))
    _send(stacker, _result("stk-ghost", "NO-SUCH-CELL-7", stacking))
    _send(press, _result("prs-2", second.serial, {"peak_pressure_mpa": 500.0, "dwell_s": 120.0}))
    states = dict(InboxEntry.objects.values_list("event_id", "reason_code"))
    assert states == {
        "stk-1": "",
        "stk-1-again": "wrong_step",
        "stk-ghost": "unknown_cell",
        "prs-2": "waiting",
    }
    return {"stacked": first.serial, "waiting": second.serial}


def _rows(html: str) -> str:
    return html.split('id="unapplied-results"')[1].split("</table>")[0]


def test_rejected_results_are_listed_newest_first_with_reason_and_cell(
    unapplied, signed_in, operator
):
    page = signed_in(operator).get(reverse("unapplied-results")).content.decode()
    rows = _rows(page)
    assert rows.index("stk-ghost") < rows.index("stk-1-again")  # newest first
    assert "unknown_cell" in rows and "wrong_step" in rows
    assert "prs-2" not in rows and ">stk-1<" not in rows  # waiting, applied: not rejected
    # A cell that exists is linked; a serial no cell has is shown as sent.
    assert f'href="{reverse("cell", args=[unapplied["stacked"]])}"' in rows
    assert '<span class="mono">NO-SUCH-CELL-7</span>' in rows
    assert "<b>1</b> unknown_cell" in page and "<b>1</b> wrong_step" in page


def test_waiting_results_are_listed_with_why(unapplied, signed_in, operator):
    url = reverse("unapplied-results") + "?state=pending"
    rows = _rows(signed_in(operator).get(url).content.decode())
    assert "prs-2" in rows and "waiting" in rows and "Waiting for the result of an earlier" in rows
    assert "stk-ghost" not in rows and "stk-1-again" not in rows


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("?station=PR-STK-1", {"stk-1-again", "stk-ghost"}),
        ("?station=PR-PRS-1", set()),
        ("?reason=unknown_cell", {"stk-ghost"}),
        ("?line=proto&reason=wrong_step", {"stk-1-again"}),
        ("?line=yokohama", set()),
        ("?state=pending&station=PR-PRS-1", {"prs-2"}),
        ("?state=nonsense", {"stk-1-again", "stk-ghost"}),  # the default list
    ],
)
def test_the_lists_filter_by_line_station_and_reason(unapplied, signed_in, operator, query, listed):
    rows = _rows(signed_in(operator).get(reverse("unapplied-results") + query).content.decode())
    every = {"stk-1", "stk-1-again", "stk-ghost", "prs-2"}
    assert {e for e in every if f">{e}<" in rows} == listed


def test_the_list_leaves_payloads_unread(unapplied, signed_in, operator):
    # A pressing result carries its curves: a page of fifty must not load them.
    client = signed_in(operator)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("unapplied-results")).status_code == 200
    inbox_reads = [q["sql"] for q in queries if 'FROM "batches_inboxentry"' in q["sql"]]
    assert inbox_reads and not any('"payload"' in sql for sql in inbox_reads)


def test_the_line_view_counts_todays_rejected_results_per_station(
    unapplied, signed_in, line_engineer
):
    html = signed_in(line_engineer).get(reverse("line-stations", args=["proto"])).content.decode()
    stacker = html.split('id="station-PR-STK-1"')[1].split('class="station ')[0]
    link = reverse("unapplied-results") + "?station=PR-STK-1"
    assert f'href="{link}"' in stacker and "2 today" in stacker
    press = html.split('id="station-PR-PRS-1"')[1].split('class="station ')[0]
    assert "none today" in press and "1 result" in press  # the waiting one is being processed


def test_the_list_runs_the_same_queries_for_two_rejected_results_or_forty(
    unapplied, signed_in, operator, stations, django_assert_num_queries
):
    client = signed_in(operator)
    client.get(reverse("home"))  # the session's first reads
    url = reverse("unapplied-results")
    with django_assert_num_queries(10):
        client.get(url)
    ghosts = [_result(f"ghost-{n}", f"NO-CELL-{n}", {"x": 1.0}) for n in range(38)]
    _send(stations["PR-STK-1"], *ghosts)
    with django_assert_num_queries(10):
        page = client.get(url).content.decode()
    assert _rows(page).split("<tbody>")[1].count("<tr>") == 40
