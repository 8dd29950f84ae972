"""Station results the workers did not apply: rejected ones with their reason, and those still
waiting, for the engineers (the station sees the same at its result status); rejected ones sent
to the workers again once their cause is put right."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import Event
from batches.services import hold_cell, release_hold
from core import partitions
from core.errors import DomainError
from demo.demo_data import nominal_stacking_readings
from stations import intake, worker
from stations.intake import requeue_rejected
from stations.models import InboxEntry
from stations.schema import StationResultIn


def _send(station, *results: dict) -> None:
    """Results through the intake and the worker's service, as a station's request would."""
    accepted = intake.accept_results(
        station, [msgspec.convert(r, StationResultIn) for r in results]
    )
    worker.process_entries(accepted.entry_ids)


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


def test_an_older_rejection_is_listed_though_its_reason_is_not_counted_lately(
    unapplied, signed_in, operator
):
    InboxEntry.objects.filter(event_id="stk-ghost").update(
        processed_at=timezone.now() - timedelta(days=10)
    )
    page = signed_in(operator).get(reverse("unapplied-results") + "?reason=unknown_cell")
    html = page.content.decode()
    assert ">stk-ghost<" in _rows(html)
    assert '<option value="unknown_cell" selected>unknown_cell</option>' in html
    assert "unknown_cell" not in html.split('id="reason-counts"')[1].split("</p>")[0]


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


def test_the_line_view_counts_results_received_months_ago_that_are_still_waiting_or_rejected_today(
    unapplied, signed_in, line_engineer
):
    """A row waits in the partition of the month it was received, however long ago (the inbox
    is partitioned by month): the cards count it all the same."""
    long_ago = partitions.recent_months(timezone.now())[0] - timedelta(days=40)
    InboxEntry.objects.filter(event_id__in=["prs-2", "stk-ghost"]).update(received_at=long_ago)
    html = signed_in(line_engineer).get(reverse("line-stations", args=["proto"])).content.decode()
    stacker = html.split('id="station-PR-STK-1"')[1].split('class="station ')[0]
    assert "2 today" in stacker
    press = html.split('id="station-PR-PRS-1"')[1].split('class="station ')[0]
    assert "1 result" in press


def test_the_list_runs_the_same_queries_for_two_rejected_results_or_forty(
    unapplied, signed_in, operator, stations, django_assert_num_queries
):
    client = signed_in(operator)
    client.get(reverse("home"))  # the session's first reads
    url = reverse("unapplied-results")
    with django_assert_num_queries(11):
        client.get(url)
    ghosts = [_result(f"ghost-{n}", f"NO-CELL-{n}", {"x": 1.0}) for n in range(38)]
    _send(stations["PR-STK-1"], *ghosts)
    with django_assert_num_queries(11):
        page = client.get(url).content.decode()
    assert _rows(page).split("<tbody>")[1].count("<tr>") == 40


# ---------------------------------------------------------------- sending rejected results again


@pytest.fixture
def rejected_on_hold(proto_batch, stations, line_engineer):
    """Cell 1 held by hand, then its stacking result arrives: rejected (on hold)."""
    cell = proto_batch.cells.order_by("position").first()
    hold = hold_cell(cell, by=line_engineer, reason="suspect fixture")
    stacking = nominal_stacking_readings(proto_batch.design)
    _send(stations["PR-STK-1"], _result("stk-held", cell.serial, stacking))
    entry = InboxEntry.objects.get(event_id="stk-held")
    assert (entry.status, entry.reason_code) == ("rejected", "on_hold")
    return entry, hold


def test_a_rejected_result_sent_again_once_its_hold_is_released_is_applied(
    rejected_on_hold, quality_engineer, line_engineer, django_capture_on_commit_callbacks
):
    entry, hold = rejected_on_hold
    release_hold(hold, by=quality_engineer, disposition="release", reason="fixture checked")
    with django_capture_on_commit_callbacks() as sent:
        assert requeue_rejected([entry.pk], by=line_engineer, reason="hold released") == 1
    assert len(sent) == 1  # the workers are sent its id once the transaction commits
    entry.refresh_from_db()
    assert (entry.status, entry.reason_code, entry.processed_at) == ("pending", "", None)
    trail = Event.objects.get(verb="result_requeued")
    assert (trail.actor, trail.reason, trail.subject) == (
        line_engineer.username,
        "hold released",
        "stk-held",
    )
    assert (trail.data["station"], trail.data["rejected"]) == ("PR-STK-1", "on_hold")
    worker.process_entries([entry.pk])
    entry.refresh_from_db()
    assert entry.status == "processed" and entry.run.cell.serial == entry.cell_serial
    assert entry.run.step.station_kind == "stacking"


def test_a_result_sent_again_while_its_cause_remains_is_rejected_again(
    rejected_on_hold, line_engineer
):
    entry, _ = rejected_on_hold
    requeue_rejected([entry.pk], by=line_engineer, reason="try again")
    worker.process_entries([entry.pk])
    entry.refresh_from_db()
    assert (entry.status, entry.reason_code, entry.attempts) == ("rejected", "on_hold", 1)
    assert Event.objects.filter(verb="result_requeued", subject="stk-held").count() == 1


def test_sending_again_needs_a_reason_and_leaves_rows_not_rejected_alone(unapplied, line_engineer):
    ids = list(InboxEntry.objects.values_list("pk", flat=True))
    with pytest.raises(DomainError) as refused:
        requeue_rejected(ids, by=line_engineer, reason="  ")
    assert refused.value.code == "reason_required"
    assert InboxEntry.objects.filter(status="rejected").count() == 2
    # Of the applied, the waiting and the two rejected results, only the rejected are sent.
    assert requeue_rejected(ids, by=line_engineer, reason="route fixed") == 2
    assert dict(InboxEntry.objects.values_list("event_id", "status")) == {
        "stk-1": "processed",
        "stk-1-again": "pending",
        "stk-ghost": "pending",
        "prs-2": "pending",
    }


def test_the_page_sends_ticked_results_again(rejected_on_hold, signed_in, line_engineer):
    entry, _ = rejected_on_hold
    client = signed_in(line_engineer)
    page = client.get(reverse("unapplied-results")).content.decode()
    assert (
        f'name="entries" value="{entry.pk}"' in page and 'action="/station-results/requeue"' in page
    )
    back = reverse("unapplied-results") + "?station=PR-STK-1"
    response = client.post(
        reverse("requeue-results"),
        {"entries": [entry.pk], "reason": "hold released", "next": back},
        follow=True,
    )
    assert response.redirect_chain == [(back, 302)]
    assert "1 result sent to the workers again." in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == "pending"


@pytest.mark.parametrize(
    "form",
    [
        {"reason": "hold released"},  # nothing ticked
        {"entries": ["999999"], "reason": "hold released"},  # no such result
        {"entries": ["x"], "reason": "hold released"},
    ],
)
def test_the_page_refuses_a_form_without_results_and_changes_nothing(
    rejected_on_hold, signed_in, line_engineer, form
):
    entry, _ = rejected_on_hold
    response = signed_in(line_engineer).post(reverse("requeue-results"), form, follow=True)
    # The field is named for people (not "entries"), then what is wrong with it.
    assert "results to send again: " in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == "rejected" and not Event.objects.filter(verb="result_requeued")


def test_the_page_refuses_a_send_without_a_reason(rejected_on_hold, signed_in, line_engineer):
    entry, _ = rejected_on_hold
    response = signed_in(line_engineer).post(
        reverse("requeue-results"), {"entries": [entry.pk], "reason": " "}, follow=True
    )
    assert "reason:" in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == "rejected"


def test_an_operator_sees_rejected_results_but_cannot_send_them_again(
    rejected_on_hold, signed_in, operator
):
    entry, _ = rejected_on_hold
    client = signed_in(operator)
    page = client.get(reverse("unapplied-results")).content.decode()
    assert "stk-held" in page and 'name="entries"' not in page
    response = client.post(reverse("requeue-results"), {"entries": [entry.pk], "reason": "let me"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.status == "rejected"


# ---------------------------------------------------------------- the engineers' API


def test_the_api_lists_rejected_and_pending_results(unapplied, api_as, operator):
    api = api_as(operator)
    rejected = api.get("/api/v1/station-results").json()
    assert rejected["count"] == 2
    ghost, again = rejected["results"]  # newest first
    assert ghost == {
        "station": "PR-STK-1",
        "line": "proto",
        "event_id": "stk-ghost",
        "cell": "NO-SUCH-CELL-7",
        "kind": "result",
        "status": "rejected",
        "reason_code": "unknown_cell",
        "reason": ghost["reason"],
        "attempts": 1,
        "received_at": ghost["received_at"],
        "processed_at": ghost["processed_at"],
    }
    assert ghost["reason"] and ghost["processed_at"]
    assert (again["event_id"], again["reason_code"]) == ("stk-1-again", "wrong_step")
    pending = api.get("/api/v1/station-results", {"state": "pending"}).json()["results"]
    assert [(r["event_id"], r["reason_code"]) for r in pending] == [("prs-2", "waiting")]
    only = api.get("/api/v1/station-results", {"line": "proto", "reason": "wrong_step"}).json()
    assert [r["event_id"] for r in only["results"]] == ["stk-1-again"]
    assert api.get("/api/v1/station-results", {"station": "PR-PRS-1"}).json()["count"] == 0


def test_the_api_list_runs_the_same_queries_for_two_rejected_results_or_forty(
    unapplied, api_as, operator, stations, django_assert_num_queries
):
    api = api_as(operator)
    with django_assert_num_queries(5):
        assert api.get("/api/v1/station-results").json()["count"] == 2
    _send(stations["PR-STK-1"], *[_result(f"g-{n}", f"NO-CELL-{n}", {"x": 1.0}) for n in range(38)])
    with django_assert_num_queries(5):
        assert len(api.get("/api/v1/station-results").json()["results"]) == 40


def test_the_api_sends_rejected_results_again(rejected_on_hold, api_as, line_engineer):
    entry, _ = rejected_on_hold
    body = {"results": [{"station": "PR-STK-1", "event_id": "stk-held"}], "reason": "released"}
    response = api_as(line_engineer).post("/api/v1/station-results/requeue", body, format="json")
    assert (response.status_code, response.json()) == (200, {"requeued": 1})
    entry.refresh_from_db()
    assert entry.status == "pending"
    again = api_as(line_engineer).post("/api/v1/station-results/requeue", body, format="json")
    assert again.json() == {"requeued": 0}  # no longer rejected: left alone


@pytest.mark.parametrize(
    ("persona", "body", "status", "code"),
    [
        ("operator", {"event_id": "stk-held"}, 403, "permission_denied"),
        ("line_engineer", {"event_id": "no-such-event"}, 404, "not_found"),
        ("line_engineer", {"event_id": "stk-held", "reason": ""}, 400, "invalid"),
        ("line_engineer", {"results": []}, 400, "invalid"),
        ("line_engineer", {"results": [{"station": "PR-STK-1"}]}, 400, "invalid"),
    ],
)
def test_the_api_refuses_a_bad_requeue_and_sends_nothing(
    rejected_on_hold, api_as, request, persona, body, status, code
):
    entry, _ = rejected_on_hold
    refs = [{"station": "PR-STK-1", "event_id": body.pop("event_id", "stk-held")}]
    payload = {"results": [*refs, {"station": "PR-STK-1", "event_id": "stk-held"}]}
    payload.update({"reason": "released", **body})
    client = api_as(request.getfixturevalue(persona))
    response = client.post("/api/v1/station-results/requeue", payload, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    entry.refresh_from_db()
    assert entry.status == "rejected" and not Event.objects.filter(verb="result_requeued")
