"""The sweep re-enqueues rows left pending too long (the broker lost the task, a worker died)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from stations import sweep, worker
from stations.models import InboxEntry


def test_sweep_reenqueues_only_rows_pending_too_long(
    station_client, proto_batch, result_for, django_capture_on_commit_callbacks
):
    stacker = station_client("PR-STK-1")
    cells = list(proto_batch.cells.all())
    stacker.post_results(result_for(cells[2], "stacking", event_id="DONE"))
    # (Processed before the others arrive: a task takes along its line's other fresh rows.)
    worker.process_entries([InboxEntry.objects.get(event_id="DONE").pk])
    stacker.post_results(result_for(cells[0], "stacking", event_id="OLD"))
    stacker.post_results(result_for(cells[1], "stacking", event_id="NEW"))
    InboxEntry.objects.update(enqueued_at=timezone.now() - timedelta(minutes=10))
    InboxEntry.objects.filter(event_id="NEW").update(enqueued_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert sweep.sweep_pending(older_than=timedelta(minutes=2)) == 1
    assert len(callbacks) == 1  # one enqueue for the one line
    old = InboxEntry.objects.get(event_id="OLD")
    assert old.enqueued_at > timezone.now() - timedelta(minutes=1)
    # Swept once, it is not swept again until it has been pending that long once more.
    with django_capture_on_commit_callbacks(execute=False):
        assert sweep.sweep_pending(older_than=timedelta(minutes=2)) == 0


def test_sweep_re_enqueues_cycler_rows_left_pending(
    station_client, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    from django.core.files.uploadedfile import SimpleUploadedFile

    station_client("PR-FRM-1").http.post(
        "/api/v1/station/cycler-files",
        {"file": SimpleUploadedFile("a.csv", b"t,v\n"), "cell": "C", "event_id": "F"},
        format="multipart",
    )
    InboxEntry.objects.update(enqueued_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False):
        assert sweep.sweep_pending(older_than=timedelta(minutes=2)) == 1


def test_results_are_enqueued_only_after_commit(
    station_client, proto_batch, result_for, django_capture_on_commit_callbacks
):
    stacker = station_client("PR-STK-1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stacker.post_results(result_for(proto_batch.cells.first(), "stacking"))
    assert len(callbacks) == 1
