"""The experiment pages: the roles, the list and the page of a running experiment with results
in pinned queries, the transitions as forms, and the per-cell CSV."""

from __future__ import annotations

import csv
import io

import pytest

from batches.models import CellRecipeOverride
from quality.experiments.models import ArmAssignment, Experiment
from tests.quality.test_experiments import _two_arms, batch40, stacked40  # noqa: F401

FEATURE = "relative_density_pct"


@pytest.fixture
def running(api_as, stacked40, line_engineer, station_client, result_for, process_pending):  # noqa: F811
    """EXP-PRESS-1 running, two arms of peak pressure, every cell pressed at its arm's setpoint."""
    lena = api_as(line_engineer)
    assert lena.post("/api/v1/experiments", _two_arms(stacked40), format="json").status_code == 201
    assert lena.post("/api/v1/experiments/EXP-PRESS-1/start").status_code == 200
    bodies, values = [], {}
    for a in ArmAssignment.objects.select_related("cell__batch__design", "arm"):
        body = result_for(a.cell, "pressing")
        values[a.cell.serial] = 93.0 + a.cell.position / 10 + (1.0 if a.arm.code == "A2" else 0)
        body["measurements"].update(
            peak_pressure_mpa=a.arm.levels["peak_pressure_mpa"], **{FEATURE: values[a.cell.serial]}
        )
        bodies.append(body)
    station_client("PR-PRS-1").post_results(*bodies)
    assert process_pending()["applied"] == 40
    return values


def test_the_pages_need_a_role(signed_in, running, outsider):
    assert signed_in(None).get("/quality/experiments/").status_code == 302
    assert signed_in(outsider).get("/quality/experiments/").status_code == 403
    assert signed_in(outsider).get("/quality/experiments/EXP-PRESS-1/").status_code == 403


def test_list_and_page_in_pinned_queries(
    signed_in, running, operator, django_assert_max_num_queries
):
    client = signed_in(operator)
    with django_assert_max_num_queries(12):
        response = client.get("/quality/experiments/")
    assert response.status_code == 200 and b"EXP-PRESS-1" in response.content
    with django_assert_max_num_queries(21):
        response = client.get(f"/quality/experiments/EXP-PRESS-1/?feature={FEATURE}")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="arm-boxes"' in page and 'id="experiment-data"' in page
    assert "Welch" in page
    # An operator reads; the forms are the engineers'.
    assert "experiment-conclude" not in page and 'name="conclusion"' not in page
    assert signed_in(operator).get("/quality/experiments/NOPE/").status_code == 404


def test_the_engineer_concludes_from_the_page(signed_in, running, line_engineer):
    client = signed_in(line_engineer)
    page = client.get("/quality/experiments/EXP-PRESS-1/").content.decode()
    assert 'name="conclusion"' in page
    response = client.post(
        "/quality/experiments/EXP-PRESS-1/conclude", {"conclusion": "A2 is denser."}
    )
    assert response.status_code == 302
    experiment = Experiment.objects.get(code="EXP-PRESS-1")
    assert (experiment.status, experiment.conclusion) == ("concluded", "A2 is denser.")
    assert not CellRecipeOverride.objects.exists()
    assert "A2 is denser." in client.get("/quality/experiments/EXP-PRESS-1/").content.decode()


def test_an_operator_cannot_conclude(signed_in, running, operator):
    response = signed_in(operator).post(
        "/quality/experiments/EXP-PRESS-1/conclude", {"conclusion": "x"}
    )
    assert response.status_code == 403
    assert Experiment.objects.get(code="EXP-PRESS-1").status == "running"


def test_the_csv_has_every_cell_with_its_arm_and_value(signed_in, running, operator):
    response = signed_in(operator).get(
        f"/quality/experiments/EXP-PRESS-1/cells.csv?feature={FEATURE}"
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "cell",
        "batch",
        "position",
        "arm",
        "peak_pressure_mpa",
        FEATURE,
        "on_arm_setpoints",
    ]
    arms = {a.cell.serial: a.arm for a in ArmAssignment.objects.select_related("cell", "arm")}
    assert len(rows) == 41
    for serial, _batch, _position, arm, peak, value, on_arm in rows[1:]:
        assert on_arm == "yes"
        assert arm == arms[serial].code
        assert float(peak) == arms[serial].levels["peak_pressure_mpa"]
        assert float(value) == running[serial]
    assert signed_in(operator).get("/quality/experiments/EXP-PRESS-1/cells.csv").status_code == 400


def test_only_quality_gets_the_deviation_form_and_starting_waits_for_it(
    signed_in,
    api_as,
    stacked40,  # noqa: F811
    line_engineer,
    quality_engineer,
):
    body = _two_arms(stacked40)
    body["factors"][0]["levels"] = [500, 750]
    assert api_as(line_engineer).post("/api/v1/experiments", body, format="json").status_code == 201
    lena, quinn = signed_in(line_engineer), signed_in(quality_engineer)
    page = lena.get("/quality/experiments/EXP-PRESS-1/").content.decode()
    assert "750" in page and "need a deviation approved by quality" in page
    assert 'name="note"' not in page
    assert lena.post("/quality/experiments/EXP-PRESS-1/deviation", {"note": "x"}).status_code == 403
    lena.post("/quality/experiments/EXP-PRESS-1/start")
    assert Experiment.objects.get(code="EXP-PRESS-1").status == "draft"
    assert 'name="note"' in quinn.get("/quality/experiments/EXP-PRESS-1/").content.decode()
    quinn.post("/quality/experiments/EXP-PRESS-1/deviation", {"note": "DEV-7"})
    lena.post("/quality/experiments/EXP-PRESS-1/start")
    experiment = Experiment.objects.get(code="EXP-PRESS-1")
    assert (experiment.status, experiment.deviation_note) == ("running", "DEV-7")
