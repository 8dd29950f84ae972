"""`GET /api/v1/spc` per the contract, freezing a baseline, and every bad input the issue names.
Figures are worked out by hand here, with constants typed from the published table."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from quality.spc.models import SpcBaseline, SpcSetting

PEAKS = [500.0, 504.0, 498.0, 502.0, 496.0, 506.0, 500.0, 494.0, 502.0, 498.0]
CYCLES = ["LOAD-A"] * 5 + ["LOAD-B"] * 5


@pytest.fixture
def pressed(proto_batch, stations, record):
    """The proto batch's ten cells stacked, then pressed a minute apart with the peak
    pressures of PEAKS, in two press cycles of five."""
    start = timezone.now() - timedelta(hours=2)
    cells = list(proto_batch.cells.order_by("position"))
    for i, cell in enumerate(cells):
        record(cell, stations["PR-STK-1"], occurred_at=start + timedelta(minutes=i))
    for i, cell in enumerate(cells):
        record(
            cell,
            stations["PR-PRS-1"],
            equipment_ref=CYCLES[i],
            measurements={"peak_pressure_mpa": PEAKS[i]},
            occurred_at=start + timedelta(hours=1, minutes=i),
        )
    return cells, start


QUERY = {"line": "proto", "step": "pressing", "parameter": "peak_pressure_mpa"}


def _mean(values):
    return sum(values) / len(values)


def _sample_sd(values):
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def test_individuals_chart_by_hand(pressed, api_as, operator, django_assert_max_num_queries):
    cells, _ = pressed
    with django_assert_max_num_queries(12):
        reply = api_as(operator).get("/api/v1/spc", QUERY)
    assert reply.status_code == 200, reply.content
    body = reply.json()
    mean = 5000 / 10
    moving = [4, 6, 4, 6, 10, 6, 6, 8, 4]
    sigma = _mean(moving) / 1.128
    overall = _sample_sd(PEAKS)
    assert (body["parameter"], body["unit"], body["chart"], body["n"]) == (
        "peak_pressure_mpa",
        "MPa",
        "imr",
        10,
    )
    assert body["center"] == pytest.approx(mean)
    assert body["sigma_within"] == pytest.approx(sigma)
    assert body["ucl"] == pytest.approx(mean + 3 * sigma)
    assert body["lcl"] == pytest.approx(mean - 3 * sigma)
    assert body["sigma_overall"] == pytest.approx(overall)
    assert (body["lsl"], body["usl"]) == (375.0, 700.0)  # the recipe's limits
    assert body["cp"] == pytest.approx(325 / (6 * sigma))
    assert body["cpk"] == pytest.approx(125 / (3 * sigma))
    assert body["pp"] == pytest.approx(325 / (6 * overall))
    assert body["ppk"] == pytest.approx(125 / (3 * overall))
    assert [p["value"] for p in body["points"]] == PEAKS
    assert [p["cell"] for p in body["points"]] == [c.serial for c in cells]
    assert all(p["signals"] == [] for p in body["points"])
    assert body["range"]["points"] == moving
    assert body["range"]["center"] == pytest.approx(_mean(moving))
    assert body["range"]["ucl"] == pytest.approx(3.267 * _mean(moving))
    assert body["range"]["lcl"] == 0
    assert body["baseline"] is None


def test_xbar_r_by_press_cycle_and_xbar_s_by_consecutive_cells(pressed, api_as, operator):
    a, b = PEAKS[:5], PEAKS[5:]
    r_bar = (max(a) - min(a) + max(b) - min(b)) / 2  # (8 + 12) / 2
    grand = _mean(PEAKS)
    body = (
        api_as(operator)
        .get("/api/v1/spc", {**QUERY, "chart": "xbar_r", "subgroup": "press_cycle"})
        .json()
    )
    assert [p["subgroup"] for p in body["points"]] == ["PR-PRS-1:LOAD-A", "PR-PRS-1:LOAD-B"]
    assert [p["value"] for p in body["points"]] == pytest.approx([_mean(a), _mean(b)])
    assert body["n"] == 10 and body["subgroups"] == 2
    assert body["center"] == pytest.approx(grand)
    assert body["sigma_within"] == pytest.approx(r_bar / 2.326)
    assert body["ucl"] == pytest.approx(grand + 0.577 * r_bar, abs=0.01)
    assert body["range"]["points"] == [8, 12]
    assert body["range"]["ucl"] == pytest.approx(2.114 * r_bar)
    assert body["range"]["lcl"] == 0

    body = api_as(operator).get("/api/v1/spc", {**QUERY, "chart": "xbar_s", "subgroup": "5"}).json()
    s_bar = (_sample_sd(a) + _sample_sd(b)) / 2
    assert body["sigma_within"] == pytest.approx(s_bar / 0.9400)
    assert body["ucl"] == pytest.approx(grand + 1.427 * s_bar, abs=0.01)
    assert body["range"]["ucl"] == pytest.approx(2.089 * s_bar)
    assert len(body["points"][0]["cells"]) == 5


def test_a_point_whose_cell_is_gone_is_charted_without_a_serial(pressed, api_as, operator):
    from batches.models import Measurement

    # A measurement names its cell without a foreign key: one pointing nowhere still charts.
    first = pressed[0][0]
    Measurement.objects.filter(name="peak_pressure_mpa", cell_id=first.pk).update(cell_id=0)
    reply = api_as(operator).get("/api/v1/spc", QUERY)
    assert reply.status_code == 200, reply.content
    points = reply.json()["points"]
    assert [p["value"] for p in points] == PEAKS
    assert points[0]["cell"] == "" and all(p["cell"] for p in points[1:])


def test_a_window_of_one_point_gives_n_and_null_figures(pressed, api_as, operator):
    cells, start = pressed
    until = (start + timedelta(hours=1, seconds=30)).isoformat()
    body = api_as(operator).get("/api/v1/spc", {**QUERY, "until": until}).json()
    assert body["n"] == 1 and len(body["points"]) == 1
    for figure in (
        "center",
        "ucl",
        "lcl",
        "sigma_within",
        "sigma_overall",
        "cp",
        "cpk",
        "pp",
        "ppk",
    ):
        assert body[figure] is None, figure
    body = (
        api_as(operator)
        .get("/api/v1/spc", {**QUERY, "batch": cells[0].batch.code, "equipment": "NONE"})
        .json()
    )
    assert body["n"] == 0 and body["points"] == []


@pytest.mark.parametrize(
    ("query", "status", "code", "field"),
    [
        ({"line": "proto", "step": "pressing"}, 400, "invalid", "parameter"),
        ({"line": "proto", "parameter": "peak_pressure_mpa"}, 400, "invalid", "step"),
        ({**QUERY, "step": "baking"}, 404, "unknown_step", None),
        ({**QUERY, "parameter": "moon_phase"}, 404, "unknown_parameter", None),
        ({**QUERY, "step": "stacking"}, 404, "unknown_parameter", None),  # not measured there
        ({**QUERY, "chart": "xbar_r", "subgroup": "1"}, 400, "invalid", "subgroup"),
        ({**QUERY, "chart": "xbar_s", "subgroup": "26"}, 400, "invalid", "subgroup"),
        ({**QUERY, "chart": "xbar_r", "subgroup": "shift"}, 400, "invalid", "subgroup"),
        ({**QUERY, "chart": "pie"}, 400, "invalid", "chart"),
        ({**QUERY, "rules": "1,9"}, 400, "invalid", "rules"),
        ({**QUERY, "line": "nowhere"}, 400, "invalid", "line"),
        ({**QUERY, "since": "yesterday"}, 400, "invalid", "since"),
    ],
)
def test_bad_input(pressed, api_as, operator, query, status, code, field):
    events = Event.objects.count()
    reply = api_as(operator).get("/api/v1/spc", query)
    assert reply.status_code == status
    body = reply.json()
    assert body["code"] == code
    if field:
        assert field in body["errors"]
    assert Event.objects.count() == events


def test_an_unknown_step_is_named_before_other_filter_errors(plant, api_as, operator):
    reply = api_as(operator).get("/api/v1/spc", {"step": "baking", "parameter": "x", "line": "no"})
    assert (reply.status_code, reply.json()["code"]) == (404, "unknown_step")


def test_who_may_read_and_freeze(pressed, api_as, operator, outsider, line_engineer):
    assert api_as(None).get("/api/v1/spc", QUERY).status_code == 401
    assert api_as(outsider).get("/api/v1/spc", QUERY).status_code == 403
    _, start = pressed
    body = {**QUERY, "since": start.isoformat(), "until": timezone.now().isoformat(), "note": "x"}
    events = Event.objects.count()
    for person in (operator, line_engineer):
        reply = api_as(person).post("/api/v1/spc/baselines", body, format="json")
        assert (reply.status_code, reply.json()["code"]) == (403, "permission_denied")
        setting = {**QUERY, "rules": [1], "hold": True, "note": "x"}
        reply = api_as(person).post("/api/v1/spc/settings", setting, format="json")
        assert reply.status_code == 403
    assert not SpcBaseline.objects.exists() and not SpcSetting.objects.exists()
    assert Event.objects.count() == events


def test_a_frozen_baseline_sets_the_limits_of_later_points(
    pressed, api_as, quality_engineer, operator
):
    cells, start = pressed
    first_five_until = start + timedelta(hours=1, minutes=4, seconds=30)
    reply = api_as(quality_engineer).post(
        "/api/v1/spc/baselines",
        {
            **QUERY,
            "since": start.isoformat(),
            "until": first_five_until.isoformat(),
            "note": "in control after the vessel seal change",
        },
        format="json",
    )
    assert reply.status_code == 201, reply.content
    frozen = reply.json()
    first = PEAKS[:5]
    moving = [abs(first[i] - first[i - 1]) for i in range(1, 5)]  # 4, 6, 4, 6
    sigma = _mean(moving) / 1.128
    assert frozen["version"] == 1 and frozen["frozen_by"] == quality_engineer.username
    assert frozen["center"] == pytest.approx(_mean(first))
    assert frozen["sigma_within"] == pytest.approx(sigma)
    event = Event.objects.get(verb="spc_baseline_frozen")
    assert event.subject == "proto/pressing/peak_pressure_mpa" and event.data["version"] == 1

    body = api_as(operator).get("/api/v1/spc", QUERY).json()
    assert body["baseline"]["version"] == 1
    assert body["baseline"]["until"] == first_five_until.isoformat()
    assert body["center"] == pytest.approx(_mean(first))
    assert body["ucl"] == pytest.approx(_mean(first) + 3 * sigma)
    # capability stays the selected points' own
    assert body["mean"] == pytest.approx(_mean(PEAKS))
    assert body["range"]["ucl"] == pytest.approx(3.267 * 1.128 * sigma)
    # an I-MR baseline does not set an X-bar chart's limits
    xbar = api_as(operator).get("/api/v1/spc", {**QUERY, "chart": "xbar_s"}).json()
    assert xbar["baseline"] is None

    again = api_as(quality_engineer).post(
        "/api/v1/spc/baselines",
        {**QUERY, "since": start.isoformat(), "until": timezone.now().isoformat(), "note": "all"},
        format="json",
    )
    assert again.json()["version"] == 2
    assert api_as(operator).get("/api/v1/spc", QUERY).json()["baseline"]["version"] == 2


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"parameter": "moon_phase"}, 404, "unknown_parameter", None),
        ({"line": "nowhere"}, 400, "invalid", "line"),
        ({"note": ""}, 400, "invalid", "note"),
        ({"chart": "xbar_r", "subgroup": "40"}, 400, "invalid", "subgroup"),
        ({"until": "2000-01-01T00:00:00+00:00"}, 400, "invalid", "until"),
        (
            {"since": "2001-01-01T00:00:00+00:00", "until": "2001-01-02T00:00:00+00:00"},
            400,
            "invalid",
            "since",
        ),
    ],
)
def test_a_bad_freeze_writes_nothing(
    pressed, api_as, quality_engineer, change, status, code, field
):
    _, start = pressed
    body = {**QUERY, "since": start.isoformat(), "until": timezone.now().isoformat(), "note": "n"}
    events = Event.objects.count()
    reply = api_as(quality_engineer).post(
        "/api/v1/spc/baselines", {**body, **change}, format="json"
    )
    assert reply.status_code == status, reply.content
    assert reply.json()["code"] == code
    if field:
        assert field in reply.json()["errors"]
    assert not SpcBaseline.objects.exists() and Event.objects.count() == events


def test_settings_choose_the_rules_judged(pressed, api_as, quality_engineer, operator):
    reply = api_as(quality_engineer).post(
        "/api/v1/spc/settings",
        {**QUERY, "rules": [1, 2], "hold": False, "note": "key"},
        format="json",
    )
    assert reply.status_code == 201 and reply.json()["version"] == 1
    body = api_as(operator).get("/api/v1/spc", QUERY).json()
    assert body["rules"] == [1, 2] and body["hold"] is False
    bad = api_as(quality_engineer).post(
        "/api/v1/spc/settings", {**QUERY, "rules": [9], "hold": True, "note": "k"}, format="json"
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    assert SpcSetting.objects.count() == 1


def test_the_schema_documents_spc(plant, api_as, operator):
    schema = api_as(operator).get("/api/schema/", HTTP_ACCEPT="application/json")
    paths = schema.json()["paths"] if schema["Content-Type"].startswith("application/json") else {}
    if not paths:
        import yaml

        paths = yaml.safe_load(schema.content)["paths"]
    assert {"/api/v1/spc", "/api/v1/spc/baselines", "/api/v1/spc/settings"} <= set(paths)


def test_beyond_the_most_points_the_latest_are_charted_and_the_rest_counted(
    pressed, api_as, operator, monkeypatch
):
    from quality.spc import selectors

    monkeypatch.setattr(selectors, "MAX_POINTS", 4)
    reply = api_as(operator).get("/api/v1/spc", QUERY).json()
    assert reply["omitted"] == len(PEAKS) - 4
    assert [p["value"] for p in reply["points"]] == PEAKS[-4:]
