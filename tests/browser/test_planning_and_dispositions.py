"""In a real browser: a line engineer plans a batch from the form; a quality engineer reworks a
batch hold at a chosen step, told first how many cells go back and how many go on."""

from __future__ import annotations

import random

import pytest
from django.utils import timezone

from audit.models import Event
from batches.models import Batch, Hold
from batches.services import StepResult, create_batch, hold_batch, record_step
from core.roles import sync_roles
from demo.demo_data import READINGS
from lines.models import CellDesign, Line, Route, Station

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_line_engineer_plans_a_batch_in_the_browser(
    page, live_server, sign_in, plant, line_engineer
):
    sync_roles()
    sign_in(page, line_engineer)
    page.goto(f"{live_server.url}/batches/")
    page.click("text=Plan a batch")
    page.select_option("#id_line", "proto")
    page.select_option("#id_design", "SSB-5AH-P1")
    route = Route.objects.get(line__code="proto", code="std")
    page.select_option("#id_route", str(route.pk))
    page.fill("#id_quantity", "6")
    page.select_option("#id_lot_cathode", "CAT-2611-A-01")
    page.click("#plan-batch button")
    page.wait_for_selector("#planned")
    batch = Batch.objects.get()
    assert page.url.endswith(f"/batches/{batch.code}/")
    assert (batch.planned_quantity, batch.status) == (6, "planned")
    page.click("text=Start the batch")
    page.wait_for_selector(".messages .success")
    assert Batch.objects.get().status == "in_progress"


def test_a_rework_is_reviewed_then_confirmed_from_the_holds_queue(
    page, live_server, sign_in, plant, line_engineer, quality_engineer
):
    sync_roles()
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=5,
        by=line_engineer,
    )
    stacker, press = Station.objects.get(code="PR-STK-1"), Station.objects.get(code="PR-PRS-1")

    for cell in batch.cells.order_by("position")[:3]:
        for station in (stacker, press):
            data = READINGS[station.kind](batch.design, random.Random(cell.serial), upset="")
            record_step(
                cell,
                station,
                StepResult(
                    occurred_at=timezone.now(),
                    measurements=data["measurements"],
                    equipment_ref="L9",
                ),
                by="test",
            )
    hold = hold_batch(batch, by=line_engineer, reason="press pressure logger suspect")

    sign_in(page, quality_engineer)
    page.goto(f"{live_server.url}/holds/")
    row = page.locator(f"#hold-{hold.pk}")
    row.locator("select[name=disposition]").select_option("rework")
    row.locator("select[name=rework_at]").select_option("pressing")
    row.locator("input[name=reason]").fill("re-press after the logger check")
    row.locator("button", has_text="Review").click()
    confirm = page.locator(f"#hold-{hold.pk} .confirm")
    confirm.wait_for()
    text = confirm.inner_text()
    assert "3 cells go back to pressing" in text
    assert "2 have not reached pressing and go on as they are" in text
    assert Hold.objects.get(pk=hold.pk).status == "open"  # nothing done yet

    confirm.locator("button", has_text="Confirm").click()
    page.wait_for_selector(f"#hold-{hold.pk} .badge.b-rework")
    assert Hold.objects.get(pk=hold.pk).disposition == "rework"
    sent_back = Event.objects.filter(verb="cell_rework", reason__startswith=f"hold {hold.pk}:")
    assert sent_back.count() == 3 and {e.data["step"] for e in sent_back} == {"pressing"}
