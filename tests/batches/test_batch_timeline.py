"""A batch's timeline: its own events and its holds' events, the newest first. The holds' events
are looked for only where the newest can be (batches.selectors.batch_timeline); the timeline is
the same as reading every one of them."""

from __future__ import annotations

from audit.models import Event
from batches import selectors
from batches.services import hold_batch, hold_cell, release_hold


def _every_event(batch, hold_ids, limit):
    own = Event.objects.filter(subject_type="batch", subject=batch.code)
    of_holds = Event.objects.filter(
        verb__in=("hold_opened", "hold_closed"), data__hold__in=hold_ids
    )
    events = {e.pk: e for e in [*own, *of_holds]}
    return sorted(events.values(), key=lambda e: (e.occurred_at, e.pk), reverse=True)[:limit]


def test_the_timeline_is_the_newest_of_every_event_of_the_batch_and_its_holds(
    proto_batch, line_engineer, quality_engineer
):
    cells = list(proto_batch.cells.order_by("position"))
    # The first hold is opened before all others and closed after them: its opening is among
    # the oldest events, its closing the newest.
    first = hold_cell(cells[0], by=line_engineer, reason="first")
    holds = [
        hold_cell(cell, by=line_engineer, reason=f"held {cell.position}") for cell in cells[1:]
    ]
    for hold in holds[::2]:
        release_hold(hold, by=quality_engineer, disposition="release", reason="fine")
    hold_batch(proto_batch, by=line_engineer, reason="dew point")  # in both: batch and hold
    release_hold(first, by=quality_engineer, disposition="release", reason="fine after all")

    times = selectors.batch_holds(proto_batch).times
    assert len(times) == len(cells) + 1 >= 5
    for limit in (1, 2, 3, 5, 8, 200):
        expected = _every_event(proto_batch, list(times), limit)
        assert selectors.batch_timeline(proto_batch, times, limit=limit) == expected, limit
    newest = selectors.batch_timeline(proto_batch, times, limit=1)
    assert newest[0].verb == "hold_closed" and newest[0].data["hold"] == first.pk


def test_a_batch_without_holds_shows_its_own_events(proto_batch, line_engineer):
    timeline = selectors.batch_timeline(proto_batch, {}, limit=200)
    assert timeline == _every_event(proto_batch, [], 200) and timeline
