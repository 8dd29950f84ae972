from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import call_command

from batches.models import Batch, Cell, Hold
from stations.models import InboxEntry


def _row_counts() -> dict[str, int]:
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label != "sessions"
    }


@pytest.mark.django_db
def test_the_seed_builds_both_lines_at_different_stages_and_a_second_run_changes_nothing(
    settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path  # the formation cycler files it stores
    call_command("seed_demo", verbosity=0)
    assert set(Batch.objects.values_list("line__code", flat=True)) == {"proto", "yokohama"}
    assert {"planned", "in_progress"} <= set(Batch.objects.values_list("status", flat=True))
    steps = set(
        Batch.objects.get(code="YOK-SEED-01").cells.values_list(
            "next_step__station_kind", flat=True
        )
    )
    assert len(steps) >= 3  # cells spread over several steps
    assert Hold.objects.filter(status="open").exists()
    # Results a stacker sent again, rejected by the workers: something for that list to show.
    resent = InboxEntry.objects.filter(event_id__endswith="-resent")
    assert resent.count() == 3
    assert set(resent.values_list("status", "reason_code")) == {("rejected", "wrong_step")}
    # Finished batches for the cost trend, and cells formed from a cycler file: the cell page
    # shows their voltage-vs-capacity curve and offers the file.
    assert Batch.objects.filter(status="completed").count() == 2
    files = InboxEntry.objects.filter(kind="cycler_file")
    assert files.exists() and not files.exclude(status="processed").exists()
    formed = Cell.objects.filter(
        status="completed", runs__curves__name="voltage_vs_capacity"
    ).distinct()
    assert formed.count() >= 20
    assert all(
        (tmp_path / path).is_file() for path in files.values_list("payload__path", flat=True)
    )
    # The performance pages' demo: channels, calibrations, ideal cycle times, stops with reasons.
    from lines.models import Equipment, IdealCycleTime, RecipeVersion, StationStateChange

    assert Equipment.objects.filter(kind="fixture_channel", parent__code="YK-FIX-1").count() == 4
    assert Equipment.objects.filter(kind="press_vessel", calibration_due__isnull=False).exists()
    released = RecipeVersion.objects.exclude(status="draft").count()
    assert IdealCycleTime.objects.values("recipe_version").distinct().count() == released
    assert StationStateChange.objects.filter(downtime_reason__code="jam").exists()
    first = _row_counts()

    call_command("seed_demo", verbosity=0)

    assert _row_counts() == first
