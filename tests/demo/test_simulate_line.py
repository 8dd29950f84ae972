"""simulate_line drives cells through every route step over the real HTTP API."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core.management import call_command

from batches.models import Cell, ProcessRun
from stations.models import InboxEntry
from tests import processes

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_simulate_line_moves_cells_through_every_step(plant, tmp_path):
    """Every result is also sent again under a new event id: no cell gets a step twice."""
    broker = processes.shared_broker_url()
    stack = processes.Stack(broker, tmp_path)
    out = io.StringIO()
    try:
        stack.start_web()
        stack.start_worker()
        call_command(
            "simulate_line", "proto", "--cells", "4", "--rate", "50", "--upset-rate", "0",
            "--resend-rate", "1", "--base-url", stack.base_url, "--seed", "7", stdout=out,
        )  # fmt: skip
        processes.wait_for(
            lambda: not InboxEntry.objects.filter(status="pending").exists(),
            timeout=30,
            what="the simulated results to be processed",
        )
    except AssertionError:
        pending = InboxEntry.objects.filter(status="pending").values_list("event_id", "reason")
        print(list(pending), out.getvalue(), stack.logs())
        raise
    finally:
        stack.stop()
    assert "cells finished 4" in out.getvalue()
    cells = Cell.objects.filter(runs__isnull=False).distinct()
    assert cells.count() == 4
    assert all(cell.status == "completed" for cell in cells)
    kinds = set(ProcessRun.objects.values_list("step__station_kind", flat=True))
    assert kinds == {"stacking", "pressing", "formation"}
    assert ProcessRun.objects.filter(curves__name="pressure").count() == 4
    assert ProcessRun.objects.count() == 12  # 4 cells x 3 steps, none twice
    # Formation uploads the channel's cycler file, read into a voltage-vs-capacity curve.
    assert InboxEntry.objects.filter(kind="cycler_file", status="processed").count() == 4
    assert ProcessRun.objects.filter(curves__name="voltage_vs_capacity").count() == 4
    # Of each result and its resend one is applied (the first the workers reach, nearly always
    # the original) and the other rejected; a cycler file is not sent again.
    outcomes = Counter(InboxEntry.objects.values_list("status", "reason_code"))
    assert outcomes == {("processed", ""): 12, ("rejected", "wrong_step"): 8}


def test_simulate_line_refuses_an_unknown_line(plant):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No line"):
        call_command("simulate_line", "nowhere", "--cells", "1")
