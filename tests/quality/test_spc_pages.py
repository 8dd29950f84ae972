"""The SPC pages: the chart of a parameter, the capability summary of a line, freezing limits."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from quality.spc.models import SpcBaseline, SpcSetting

PEAKS = [500.0, 501.0, 499.0, 500.0, 502.0, 498.0, 500.0, 501.0, 499.0, 530.0]


@pytest.fixture
def pressed(proto_batch, stations, record):
    start = timezone.now() - timedelta(hours=2)
    cells = list(proto_batch.cells.order_by("position"))
    for i, cell in enumerate(cells):
        record(cell, stations["PR-STK-1"], occurred_at=start + timedelta(minutes=i))
        record(
            cell,
            stations["PR-PRS-1"],
            equipment_ref="LOAD-1",
            measurements={"peak_pressure_mpa": PEAKS[i]},
            occurred_at=start + timedelta(hours=1, minutes=i),
        )
    return cells, start


CHART = "/quality/spc/?line=proto&step=pressing&parameter=peak_pressure_mpa"


def test_the_chart_page_embeds_the_points_and_their_signals(
    pressed, signed_in, operator, django_assert_max_num_queries
):
    cells, _ = pressed
    client = signed_in(operator)
    with django_assert_max_num_queries(14):
        page = client.get(CHART)
    assert page.status_code == 200
    html = page.content.decode()
    data = json.loads(html.split('id="spc-data" type="application/json">')[1].split("</script>")[0])
    assert [p["cell"] for p in data["points"]] == [c.serial for c in cells]
    # 530 is beyond 3 sigma of mean 503: moving ranges 1,2,1,2,4,2,1,2,31 (mean 46/9) over
    # 1.128; the nine before it are all below that mean (rule 2 at the ninth)
    assert data["points"][-1]["signals"] == [1]
    assert data["points"][8]["signals"] == [2]
    assert data["cell_url"] == "/cells/SERIAL/"
    assert "2 points signalled" in html and "phase I" in html
    assert "Freeze limits" not in html  # an operator may not freeze
    assert 'src="/static/js/spc.js"' in html


def test_the_chart_page_shows_what_is_wrong_with_the_query(pressed, signed_in, operator):
    page = signed_in(operator).get("/quality/spc/?step=pressing&parameter=moon_phase")
    assert page.status_code == 404 and "No moon_phase was measured" in page.content.decode()
    page = signed_in(operator).get(CHART + "&chart=xbar_r&subgroup=40")
    assert page.status_code == 400 and "subgroup" in page.content.decode()
    assert signed_in(operator).get("/quality/spc/").status_code == 200  # the empty form


def test_the_capability_summary_lists_judged_parameters_worst_first(
    pressed, signed_in, operator, django_assert_max_num_queries
):
    client = signed_in(operator)
    # 12 for the page (the step's stations among them, read once), then 3 a judged parameter
    # (its points, settings and baseline)
    with django_assert_max_num_queries(24):
        page = client.get("/quality/spc/capability/proto/?step=pressing")
    assert page.status_code == 200
    html = page.content.decode()
    pressing = html.split('id="step-pressing"')[1]
    judged = {
        "peak_pressure_mpa": "Peak pressure",
        "dwell_s": "Dwell time",
        "temperature_c": "Temperature",
        "relative_density_pct": "Relative density",
    }
    # Each judged parameter is a link to its chart, shown by its display name.
    for name, shown in judged.items():
        assert f'parameter={name}" title="{name}">{shown}</a>' in pressing
    assert "parameter=thickness_before_um" not in pressing  # recorded, not judged
    link = "/quality/spc/?line=proto&amp;step=pressing&amp;parameter=peak_pressure_mpa"
    assert link in pressing
    all_steps = client.get("/quality/spc/capability/proto/")
    assert all_steps.status_code == 200 and 'id="step-stacking"' in all_steps.content.decode()


def test_the_line_view_links_to_the_capability_summary(plant, signed_in, operator):
    html = signed_in(operator).get("/lines/proto/").content.decode()
    assert 'href="/quality/spc/capability/proto/"' in html


def test_pages_need_a_sign_in_and_viewing_rights(plant, signed_in, outsider):
    assert signed_in(None).get(CHART).status_code == 302
    assert signed_in(outsider).get(CHART).status_code == 403
    assert signed_in(outsider).get("/quality/spc/capability/proto/").status_code == 403


def test_freezing_from_the_page(pressed, signed_in, quality_engineer, line_engineer):
    _, start = pressed
    form = {
        "line": "proto",
        "step": "pressing",
        "parameter": "peak_pressure_mpa",
        "chart": "imr",
        "since": start.isoformat(),
        "until": (start + timedelta(hours=1, minutes=8, seconds=30)).isoformat(),
        "note": "before the seal change",
        "next": CHART,
    }
    events = Event.objects.count()
    refused = signed_in(line_engineer).post("/quality/spc/freeze", form)
    assert refused.status_code == 403
    assert not SpcBaseline.objects.exists() and Event.objects.count() == events

    done = signed_in(quality_engineer).post("/quality/spc/freeze", form)
    assert done.status_code == 302 and done["Location"] == CHART
    baseline = SpcBaseline.objects.get()
    assert baseline.version == 1 and baseline.frozen_by == quality_engineer
    assert baseline.n == 9
    assert baseline.center == pytest.approx(sum(PEAKS[:9]) / 9)
    html = signed_in(quality_engineer).get(CHART).content.decode()
    assert "baseline v1" in html and "Freeze limits" in html


def test_choosing_the_rules_and_holding_from_the_page(
    pressed, signed_in, quality_engineer, operator
):
    form = {
        "line": "proto",
        "step": "pressing",
        "parameter": "peak_pressure_mpa",
        "rules": ["1", "5"],
        "hold": "1",
        "note": "key characteristic",
        "next": CHART,
    }
    events = Event.objects.count()
    assert signed_in(operator).post("/quality/spc/settings", form).status_code == 403
    assert not SpcSetting.objects.exists() and Event.objects.count() == events

    assert signed_in(quality_engineer).post("/quality/spc/settings", form).status_code == 302
    setting = SpcSetting.objects.get()
    assert (setting.rules, setting.hold, setting.version) == ([1, 5], True, 1)
    html = signed_in(quality_engineer).get(CHART).content.decode()
    assert "signals <b>hold</b> the cell" in html and "rules 1, 5" in html
    assert 'value="5" checked' in html and 'value="2" checked' not in html
