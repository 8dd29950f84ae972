"""Experiment lots through the engineers' API and the station API: a 2 x 2 factorial of pressing
peak pressure and dwell over 40 cells, each cell served its arm's frozen recipe version at
track-in and judged by it, and the arms' statistics checked against hand formulas."""

from __future__ import annotations

import math
import random
import threading

import numpy as np
import pytest
from django.db import connection, connections, transaction
from scipy import stats

from audit.models import Event
from batches.models import Batch, CellRecipeOverride, ProcessRun
from batches.services import create_batch
from core.errors import DomainError
from lines.models import CellDesign, Line, RecipeVersion, Route
from quality.experiments.models import Arm, ArmAssignment, Experiment
from quality.experiments.services import FactorSpec, create_experiment

PEAKS = [450.0, 550.0]
DWELLS = [240.0, 360.0]


@pytest.fixture
def batch40(plant, line_engineer) -> Batch:
    line = Line.objects.get(code="proto")
    return create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=40,
        by=line_engineer,
        material_lots={"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01"},
    )


@pytest.fixture
def stacked40(batch40, station_client, result_for, process_pending) -> Batch:
    stacker = station_client("PR-STK-1")
    cells = list(batch40.cells.order_by("position"))
    assert stacker.post_results(*(result_for(c, "stacking") for c in cells)).status_code == 202
    assert process_pending()["applied"] == 40
    return batch40


def definition(batch: Batch, **fields) -> dict:
    return {
        "code": "EXP-PRESS-1",
        "title": "Peak pressure x dwell",
        "objective": "Does a longer dwell buy density at the lower pressure?",
        "batches": [batch.code],
        "factors": [
            {"name": "peak_pressure_mpa", "station_kind": "pressing", "levels": PEAKS},
            {"name": "dwell_s", "station_kind": "pressing", "levels": DWELLS},
        ],
        "design": "factorial",
        "assignment": "random",
        "seed": 2611,
        **fields,
    }


def density(serial: str, peak: float, dwell: float) -> float:
    """A made-up response with main effects, an interaction and noise, fixed per cell."""
    noise = random.Random(serial).gauss(0, 0.6)
    return round(
        93
        + 0.02 * (peak - 450)
        + 0.004 * (dwell - 240)
        - 0.00004 * (peak - 450) * (dwell - 240)
        + noise,
        3,
    )


def test_a_two_by_two_runs_through_the_station_api_with_each_arms_setpoints(
    api_as, stacked40, line_engineer, station_client, result_for, process_pending
):
    lena = api_as(line_engineer)
    response = lena.post("/api/v1/experiments", definition(stacked40), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [a["levels"] for a in body["arms"]] == [
        {"peak_pressure_mpa": p, "dwell_s": d} for p in PEAKS for d in DWELLS
    ]
    assert [a["cells"] for a in body["arms"]] == [10, 10, 10, 10]
    released = RecipeVersion.objects.get(
        recipe__line__code="proto",
        recipe__station_kind="pressing",
        recipe__design=None,
        status="released",
    )

    response = lena.post("/api/v1/experiments/EXP-PRESS-1/start", format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "running"
    arm_versions = {
        arm["code"]: arm["recipe_versions"][0]["version"] for arm in response.json()["arms"]
    }
    assert len(set(arm_versions.values())) == 4 and released.version not in arm_versions.values()

    arm_of = {a.cell.serial: a.arm for a in ArmAssignment.objects.select_related("cell", "arm")}
    presser = station_client("PR-PRS-1")
    expected, bodies = {}, []
    for i, cell in enumerate(stacked40.cells.order_by("position")):
        arm = arm_of[cell.serial]
        served = presser.post_json("/api/v1/station/track-in", {"cell": cell.serial})
        assert served.status_code == 200, served.json()
        recipe = served.json()["recipe"]
        assert recipe["version"] == arm_versions[arm.code]
        peak = recipe["parameters"]["peak_pressure_mpa"]
        dwell = recipe["parameters"]["dwell_s"]
        assert (peak["target"], dwell["target"]) == (
            arm.levels["peak_pressure_mpa"],
            arm.levels["dwell_s"],
        )
        # Inside the released limits: the limits are the released version's.
        assert (peak["min"], peak["max"]) == (375.0, 700.0)
        value = density(cell.serial, peak["target"], dwell["target"])
        expected[cell.serial] = (arm.code, value)
        body = result_for(cell, "pressing")
        body["measurements"].update(
            peak_pressure_mpa=peak["target"], dwell_s=dwell["target"], relative_density_pct=value
        )
        if i % 2:  # half name the version served, half leave it to the engine
            body["recipe_version"] = recipe["version"]
        bodies.append(body)
    # In one request: the station API's burst limit is 50 requests a second.
    assert presser.post_results(*bodies).status_code == 202
    # The line's own view of the station still shows the released version.
    assert presser.get("/api/v1/station").json()["recipe"]["version"] == released.version
    assert process_pending()["applied"] == 40

    runs = ProcessRun.objects.filter(step__station_kind="pressing").select_related(
        "cell", "recipe_version"
    )
    assert runs.count() == 40
    for run in runs:
        arm_code = expected[run.cell.serial][0]
        assert run.recipe_version.version == arm_versions[arm_code]
        assert run.recipe_version.status == "experiment"
        assert run.recipe_version.derived_from_id == released.pk
        assert run.verdict == "pass"

    response = lena.get("/api/v1/experiments/EXP-PRESS-1/results?feature=relative_density_pct")
    assert response.status_code == 200, response.json()
    found = response.json()
    groups = {code: [v for a, v in expected.values() if a == code] for code in arm_versions}
    for arm in found["arms"]:
        x = np.array(groups[arm["arm"]])
        n, mean, sd = (
            len(x),
            x.sum() / len(x),
            math.sqrt(((x - x.mean()) ** 2).sum() / (len(x) - 1)),
        )
        half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        assert arm["n"] == n == 10
        assert arm["mean"] == pytest.approx(mean)
        assert arm["sd"] == pytest.approx(sd)
        assert (arm["ci_low"], arm["ci_high"]) == pytest.approx((mean - half, mean + half))
        assert arm["median"] == pytest.approx(float(np.sort(x)[4:6].mean()))

    # One-way ANOVA over four arms, by hand.
    everything = np.concatenate(list(groups.values()))
    grand = everything.mean()
    ss_between = sum(len(g) * (np.mean(g) - grand) ** 2 for g in groups.values())
    ss_within = sum(((np.array(g) - np.mean(g)) ** 2).sum() for g in groups.values())
    f = (ss_between / 3) / (ss_within / 36)
    comparison = found["comparison"]
    assert comparison["test"] == "anova"
    assert comparison["statistic"] == pytest.approx(f)
    assert comparison["p_value"] == pytest.approx(stats.f.sf(f, 3, 36))
    assert comparison["eta_squared"] == pytest.approx(ss_between / (ss_between + ss_within))

    # Main effects: the mean of the 20 cells at each level; the interaction: the four cells means.
    for factor in ("peak_pressure_mpa", "dwell_s"):
        for level_mean in found["main_effects"][factor]:
            pooled = [
                v
                for s, (a, v) in expected.items()
                if arm_of[s].levels[factor] == level_mean["level"]
            ]
            assert level_mean["n"] == 20
            assert level_mean["mean"] == pytest.approx(sum(pooled) / 20)
    interaction = found["interaction"]
    assert (interaction["x"], interaction["lines"]) == ("peak_pressure_mpa", "dwell_s")
    by_levels = {
        (a.levels["peak_pressure_mpa"], a.levels["dwell_s"]): a.code for a in Arm.objects.all()
    }
    for row in interaction["rows"]:
        for peak, mean in zip(interaction["x_levels"], row["means"], strict=True):
            assert mean == pytest.approx(np.mean(groups[by_levels[(peak, row["level"])]]))

    response = lena.post(
        "/api/v1/experiments/EXP-PRESS-1/conclude",
        {"conclusion": "550 MPa wins; dwell matters only at 450."},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == "concluded"
    assert not CellRecipeOverride.objects.exists()
    assert list(
        Event.objects.filter(subject="EXP-PRESS-1").order_by("id").values_list("verb", flat=True)
    ) == ["experiment_created", "experiment_started", "experiment_concluded"]


def _two_arms(batch: Batch, **fields) -> dict:
    return definition(
        batch,
        factors=[{"name": "peak_pressure_mpa", "station_kind": "pressing", "levels": PEAKS}],
        **fields,
    )


def test_two_arms_are_compared_by_welchs_t_and_effect_sizes(
    api_as, stacked40, line_engineer, station_client, result_for, process_pending
):
    lena = api_as(line_engineer)
    assert lena.post("/api/v1/experiments", _two_arms(stacked40), format="json").status_code == 201
    assert lena.post("/api/v1/experiments/EXP-PRESS-1/start").status_code == 200
    arm_of = {a.cell.serial: a.arm for a in ArmAssignment.objects.select_related("cell", "arm")}
    presser = station_client("PR-PRS-1")
    groups: dict[str, list[float]] = {"A1": [], "A2": []}
    bodies = []
    for cell in stacked40.cells.all():
        arm = arm_of[cell.serial]
        # A spread that differs between arms, which Welch's test is for.
        value = density(cell.serial, arm.levels["peak_pressure_mpa"], 300) * (
            1.0 if arm.code == "A1" else 1.01
        )
        groups[arm.code].append(value)
        body = result_for(cell, "pressing")
        body["measurements"].update(
            peak_pressure_mpa=arm.levels["peak_pressure_mpa"], relative_density_pct=value
        )
        bodies.append(body)
    presser.post_results(*bodies)
    assert process_pending()["applied"] == 40
    found = lena.get("/api/v1/experiments/EXP-PRESS-1/results?feature=relative_density_pct").json()

    a, b = np.array(groups["A1"]), np.array(groups["A2"])
    va, vb = a.var(ddof=1), b.var(ddof=1)
    t = (a.mean() - b.mean()) / math.sqrt(va / len(a) + vb / len(b))
    df = (va / len(a) + vb / len(b)) ** 2 / (
        (va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1)
    )
    pooled = math.sqrt(((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2))
    d = (a.mean() - b.mean()) / pooled
    comparison = found["comparison"]
    assert comparison["test"] == "welch_t"
    assert comparison["statistic"] == pytest.approx(t)
    assert comparison["df"] == pytest.approx(df)
    assert comparison["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert comparison["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert comparison["cohens_d"] == pytest.approx(d)
    assert comparison["hedges_g"] == pytest.approx(d * (1 - 3 / (4 * 40 - 9)))


def _assignment(batch: Batch, api, **fields) -> dict[str, str]:
    response = api.post("/api/v1/experiments", _two_arms(batch, **fields), format="json")
    assert response.status_code == 201, response.json()
    return {
        a.cell.serial: a.arm.code
        for a in ArmAssignment.objects.filter(experiment__code=fields["code"]).select_related(
            "cell", "arm"
        )
    }


def test_randomised_assignment_is_reproducible_from_its_seed_and_balanced(
    api_as, stacked40, line_engineer
):
    lena = api_as(line_engineer)
    first = _assignment(stacked40, lena, code="R1", seed=42)
    again = _assignment(stacked40, lena, code="R2", seed=42)
    other = _assignment(stacked40, lena, code="R3", seed=43)
    assert first == again and first != other
    assert sorted(first.values()).count("A1") == 20
    assert Experiment.objects.get(code="R1").seed == 42
    drawn = _assignment(stacked40, lena, code="R4")  # no seed given: one is drawn and stored
    seed = Experiment.objects.get(code="R4").seed
    assert seed is not None
    assert _assignment(stacked40, lena, code="R5", seed=seed) == drawn


def test_balanced_assignment_deals_the_arms_round_robin_over_positions(
    api_as, stacked40, line_engineer
):
    lena = api_as(line_engineer)
    body = definition(stacked40, assignment="balanced")
    body.pop("seed")
    assert lena.post("/api/v1/experiments", body, format="json").status_code == 201
    rows = ArmAssignment.objects.select_related("cell", "arm").order_by("cell__position")
    assert [r.arm.code for r in rows] == ["A1", "A2", "A3", "A4"] * 10


def test_assignment_by_hand(api_as, stacked40, line_engineer):
    cells = list(stacked40.cells.order_by("position").values_list("serial", flat=True))
    manual = {serial: ("A1" if i < 3 else "A2") for i, serial in enumerate(cells[:8])}
    lena = api_as(line_engineer)
    response = lena.post(
        "/api/v1/experiments",
        _two_arms(stacked40, assignment="manual", cells=manual, seed=None) | {"seed": 1},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert [a["cells"] for a in response.json()["arms"]] == [3, 5]


def test_setpoints_outside_the_limits_wait_for_qualitys_deviation(
    api_as, stacked40, line_engineer, quality_engineer, station_client
):
    lena, quinn = api_as(line_engineer), api_as(quality_engineer)
    body = definition(
        stacked40,
        factors=[{"name": "peak_pressure_mpa", "station_kind": "pressing", "levels": [500, 750]}],
    )
    assert lena.post("/api/v1/experiments", body, format="json").status_code == 201
    response = lena.post("/api/v1/experiments/EXP-PRESS-1/start")
    assert (response.status_code, response.json()["code"]) == (409, "deviation_required")
    assert "750" in response.json()["detail"]
    assert not CellRecipeOverride.objects.exists()
    assert not RecipeVersion.objects.filter(status="experiment").exists()
    # The line engineer may not approve it; quality may.
    response = lena.post(
        "/api/v1/experiments/EXP-PRESS-1/deviation", {"note": "Trial"}, format="json"
    )
    assert response.status_code == 403
    response = quinn.post(
        "/api/v1/experiments/EXP-PRESS-1/deviation",
        {"note": "DEV-7: 750 MPa trial on 20 cells"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["deviation_approved_by"] == quality_engineer.username
    assert lena.post("/api/v1/experiments/EXP-PRESS-1/start").status_code == 200
    # The high arm's limits move with its target: 750 is served inside [425, 950].
    high = RecipeVersion.objects.get(status="experiment", parameters__target=750.0)
    peak = high.parameters.get(name="peak_pressure_mpa")
    assert (peak.min, peak.target, peak.max) == (625.0, 750.0, 950.0)
    cell = ArmAssignment.objects.filter(arm__code="A2").first().cell
    served = station_client("PR-PRS-1").post_json("/api/v1/station/track-in", {"cell": cell.serial})
    assert served.json()["recipe"]["parameters"]["peak_pressure_mpa"]["min"] == 625.0


def written() -> tuple[int, ...]:
    return (
        Experiment.objects.count(),
        Arm.objects.count(),
        ArmAssignment.objects.count(),
        Event.objects.count(),
        RecipeVersion.objects.count(),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": ""}, "code"),
        ({"batches": ["NOPE"]}, "batches"),
        ({"batches": []}, "batches"),
        ({"design": "taguchi"}, "design"),
        ({"assignment": "by_luck"}, "assignment"),
        ({"factors": []}, "factors"),
        (
            {"factors": [{"name": "peak_pressure_mpa", "station_kind": "pressing", "levels": [1]}]},
            "factors",
        ),
        (
            {"factors": [{"name": "no_such", "station_kind": "pressing", "levels": [1, 2]}]},
            "factors[0]",
        ),
        (
            {
                "factors": [
                    {"name": "peak_pressure_mpa", "station_kind": "pressing", "levels": ["a", "b"]}
                ]
            },
            "factors[0]",
        ),
        (
            {"factors": [{"name": "peak_pressure_mpa", "station_kind": "oven", "levels": [1, 2]}]},
            "factors",
        ),
        ({"design": "arms"}, "arms"),
        (
            {"design": "arms", "arms": [{"code": "X", "levels": {"peak_pressure_mpa": 450.0}}]},
            "arms",
        ),
        ({"assignment": "manual"}, "cells"),
        ({"assignment": "manual", "cells": {"NOT-A-CELL": "A1"}}, "cells"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_input_is_refused_with_field_errors_and_nothing_written(
    api_as, stacked40, line_engineer, change, field
):
    before = written()
    response = api_as(line_engineer).post(
        "/api/v1/experiments", definition(stacked40, **change), format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid"), response.json()
    assert field in response.json()["errors"]
    assert written() == before


def test_a_code_in_use_cells_past_the_step_unknown_and_wrong_state(
    api_as, stacked40, line_engineer, operator, station_client, result_for, process_pending
):
    lena = api_as(line_engineer)
    assert lena.post("/api/v1/experiments", definition(stacked40), format="json").status_code == 201
    again = lena.post("/api/v1/experiments", definition(stacked40), format="json")
    assert (again.status_code, again.json()["code"]) == (400, "invalid")
    assert lena.get("/api/v1/experiments/NOPE").status_code == 404
    assert lena.get("/api/v1/experiments/NOPE/results?feature=x").json()["code"] == "not_found"
    bad = lena.get("/api/v1/experiments/EXP-PRESS-1/results")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    concluded = lena.post(
        "/api/v1/experiments/EXP-PRESS-1/conclude", {"conclusion": "x"}, format="json"
    )
    assert (concluded.status_code, concluded.json()["code"]) == (409, "invalid_transition")
    assert (
        api_as(operator)
        .post("/api/v1/experiments", definition(stacked40), format="json")
        .status_code
        == 403
    )

    cell = stacked40.cells.first()
    station_client("PR-PRS-1").post_results(result_for(cell, "pressing"))
    process_pending()
    before = written()
    late = lena.post("/api/v1/experiments", definition(stacked40, code="LATE"), format="json")
    assert (late.status_code, late.json()["code"]) == (409, "cells_past_step")
    assert written() == before


def test_the_list_is_paginated_in_a_fixed_number_of_queries(
    api_as, stacked40, line_engineer, django_assert_max_num_queries
):
    lena = api_as(line_engineer)
    for i in range(4):
        lena.post("/api/v1/experiments", _two_arms(stacked40, code=f"E{i}"), format="json")
    with django_assert_max_num_queries(6):
        response = lena.get("/api/v1/experiments")
    assert response.json()["count"] == 4
    assert [r["code"] for r in response.json()["results"]] == ["E3", "E2", "E1", "E0"]
    assert response.json()["results"][0]["cells"] == 40
    with django_assert_max_num_queries(9):
        assert lena.get("/api/v1/experiments/E1").status_code == 200
    with django_assert_max_num_queries(12):
        assert (
            lena.get("/api/v1/experiments/E1/results?feature=relative_density_pct").status_code
            == 200
        )


def test_a_list_of_arms_balanced_is_compared_by_anova_and_a_cancel_gives_back_the_recipe(
    api_as, stacked40, line_engineer, station_client
):
    lena = api_as(line_engineer)
    body = definition(
        stacked40,
        factors=[
            {"name": "peak_pressure_mpa", "station_kind": "pressing", "levels": [450, 500, 550]}
        ],
        design="arms",
        arms=[
            {"code": "LOW", "levels": {"peak_pressure_mpa": 450}},
            {"code": "HIGH", "levels": {"peak_pressure_mpa": 550}},
            {"code": "MID", "levels": {"peak_pressure_mpa": 500}},
        ],
        assignment="balanced",
    )
    response = lena.post("/api/v1/experiments", body, format="json")
    assert response.status_code == 201, response.json()
    assert [(a["code"], a["cells"]) for a in response.json()["arms"]] == [
        ("LOW", 14),
        ("HIGH", 13),
        ("MID", 13),
    ]
    assert lena.post("/api/v1/experiments/EXP-PRESS-1/start").status_code == 200
    cell = stacked40.cells.get(position=2)  # the second cell: HIGH
    presser = station_client("PR-PRS-1")
    served = presser.post_json("/api/v1/station/track-in", {"cell": cell.serial}).json()
    assert served["recipe"]["parameters"]["peak_pressure_mpa"]["target"] == 550
    response = lena.post(
        "/api/v1/experiments/EXP-PRESS-1/cancel", {"reason": "press down"}, format="json"
    )
    assert response.json()["status"] == "cancelled"
    served = presser.post_json("/api/v1/station/track-in", {"cell": cell.serial}).json()
    assert served["recipe"]["parameters"]["peak_pressure_mpa"]["target"] == 500.0
    assert served["recipe"]["version"] == presser.get("/api/v1/station").json()["recipe"]["version"]
    again = lena.post("/api/v1/experiments/EXP-PRESS-1/start")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_an_arms_version_is_frozen_by_the_database(api_as, stacked40, line_engineer):
    from django.db import IntegrityError, transaction

    lena = api_as(line_engineer)
    lena.post("/api/v1/experiments", _two_arms(stacked40), format="json")
    lena.post("/api/v1/experiments/EXP-PRESS-1/start")
    version = RecipeVersion.objects.filter(status="experiment").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        version.parameters.filter(name="peak_pressure_mpa").update(target=999.0)
    with pytest.raises(IntegrityError), transaction.atomic():
        RecipeVersion.objects.filter(pk=version.pk).update(status="released")


def test_grade_share_per_arm(api_as, stacked40, line_engineer):
    from batches.models import Cell

    lena = api_as(line_engineer)
    lena.post("/api/v1/experiments", _two_arms(stacked40), format="json")
    cells = list(stacked40.cells.order_by("position"))
    # Grades as grading would have written them; ten cells not graded yet.
    for i, cell in enumerate(cells[:30]):
        Cell.objects.filter(pk=cell.pk).update(grade="A" if i % 3 else "B")
    arm_of = {a.cell_id: a.arm.code for a in ArmAssignment.objects.select_related("arm")}
    graded = {cell.pk: ("A" if i % 3 else "B") for i, cell in enumerate(cells[:30])}
    found = lena.get("/api/v1/experiments/EXP-PRESS-1/results?feature=grade:A").json()
    for arm in found["arms"]:
        mine = [g == "A" for pk, g in graded.items() if arm_of[pk] == arm["arm"]]
        assert arm["n"] == len(mine)
        assert arm["mean"] == pytest.approx(sum(mine) / len(mine))
    assert lena.get("/api/v1/experiments/EXP-PRESS-1/results?feature=grade:").status_code == 400


def test_a_material_arm_is_loaded_with_its_own_lot_at_track_in(
    api_as, batch40, line_engineer, station_client
):
    lena = api_as(line_engineer)
    body = definition(
        batch40,
        factors=[
            {
                "kind": "material",
                "name": "electrolyte",
                "station_kind": "stacking",
                "levels": ["SE-2611-01", "SE-2611-02"],
            }
        ],
        assignment="balanced",
    )
    body.pop("seed")
    wrong_role = {
        **body,
        "factors": [{**body["factors"][0], "levels": ["CAT-2611-A-01", "SE-2611-01"]}],
    }
    response = lena.post("/api/v1/experiments", wrong_role, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert lena.post("/api/v1/experiments", body, format="json").status_code == 201
    assert lena.post("/api/v1/experiments/EXP-PRESS-1/start").status_code == 200
    stacker = station_client("PR-STK-1")
    first, second = batch40.cells.order_by("position")[:2]  # A1 (SE-2611-01), A2 (SE-2611-02)
    refused = stacker.post_json(
        "/api/v1/station/track-in",
        {"cell": second.serial, "material_lots": {"electrolyte": "SE-2611-01"}},
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "wrong_lot_for_arm")
    assert "SE-2611-02" in refused.json()["detail"]
    for cell, lot in ((first, "SE-2611-01"), (second, "SE-2611-02")):
        served = stacker.post_json(
            "/api/v1/station/track-in", {"cell": cell.serial, "material_lots": {"electrolyte": lot}}
        )
        assert served.status_code == 200, served.json()


def test_a_cell_run_on_other_setpoints_than_its_arms_is_left_out(
    api_as, stacked40, line_engineer, station_client, result_for, process_pending
):
    lena = api_as(line_engineer)
    lena.post("/api/v1/experiments", _two_arms(stacked40), format="json")
    lena.post("/api/v1/experiments/EXP-PRESS-1/start")
    released = RecipeVersion.objects.get(
        recipe__line__code="proto",
        recipe__station_kind="pressing",
        recipe__design=None,
        status="released",
    )
    assignments = list(ArmAssignment.objects.select_related("cell__batch__design", "arm"))
    stray = assignments[0]
    bodies = []
    for a in assignments:
        body = result_for(a.cell, "pressing")
        if a is stray:  # the station ran the line's recipe, not the arm's
            body["recipe_version"] = released.version
        bodies.append(body)
    station_client("PR-PRS-1").post_results(*bodies)
    assert process_pending()["applied"] == 40
    found = lena.get("/api/v1/experiments/EXP-PRESS-1/results?feature=relative_density_pct").json()
    counts = {arm["arm"]: arm["n"] for arm in found["arms"]}
    assert counts == {code: 20 - (code == stray.arm.code) for code in ("A1", "A2")}


def test_the_recipe_history_diffs_an_arm_against_its_origin_and_releases_against_releases(
    api_as, stacked40, line_engineer
):
    from lines.selectors import recipe_histories
    from lines.services import supersede_recipe

    lena = api_as(line_engineer)
    lena.post("/api/v1/experiments", _two_arms(stacked40), format="json")
    lena.post("/api/v1/experiments/EXP-PRESS-1/start")
    released = RecipeVersion.objects.get(
        recipe__line__code="proto",
        recipe__station_kind="pressing",
        recipe__design=None,
        status="released",
    )
    parameters = released.parameters_dict()
    parameters["temperature_c"] = {**parameters["temperature_c"], "target": 65.0}
    newer = supersede_recipe(released.recipe, by=line_engineer, parameters=parameters, note="hot")
    (history,) = [h for r, h in recipe_histories(line="proto") if r.pk == released.recipe_id]
    changes = {
        entry.version.version: [(c.name, c.fields) for c in entry.changes] for entry in history
    }
    assert changes[newer.version] == [("temperature_c", ["target"])]
    arms = RecipeVersion.objects.filter(status="experiment").order_by("version")
    assert [changes[v.version] for v in arms] == [
        [("peak_pressure_mpa", ["target"])],
        [("peak_pressure_mpa", ["target"])],
    ]


@pytest.mark.django_db(transaction=True)
def test_two_engineers_naming_an_experiment_alike_at_once_get_a_400_not_a_500(plant, line_engineer):
    """The second insert waits on the first's unique code and is refused as a field error."""
    line = Line.objects.get(code="proto")
    batches = [
        create_batch(
            line=line,
            design=CellDesign.objects.get(code="SSB-5AH-P1"),
            route=Route.objects.get(line=line, code="std"),
            quantity=4,
            by=line_engineer,
        )
        for _ in range(2)
    ]

    def define(batch: Batch):
        return create_experiment(
            code="EXP-SAME",
            title="Same code",
            batches=[batch],
            factors=[FactorSpec("parameter", "peak_pressure_mpa", "pressing", PEAKS)],
            design="factorial",
            assignment="balanced",
            by=line_engineer,
        )

    first_written, release_first, refused = threading.Event(), threading.Event(), []

    def first():
        with transaction.atomic():
            define(batches[0])
            first_written.set()
            release_first.wait(30)
        connections.close_all()

    def second():
        try:
            define(batches[1])
        except DomainError as error:
            refused.append(error)
        finally:
            connections.close_all()

    a = threading.Thread(target=first)
    a.start()
    assert first_written.wait(30)
    b = threading.Thread(target=second)
    b.start()
    # The second has passed the check for the code and waits on the unique index.
    for _ in range(300):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
        threading.Event().wait(0.1)
    else:
        raise AssertionError("the second definition never waited on the first")
    release_first.set()
    a.join(30)
    b.join(30)
    assert [(e.code, e.status) for e in refused] == [("invalid", 400)]
    assert "code" in refused[0].errors
    assert Experiment.objects.filter(code="EXP-SAME").count() == 1
