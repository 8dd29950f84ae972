"""A service's refusal in the reader's language: Japanese on a Japanese page, English (the default
language) through the API whatever it asks for and wherever no request chose a language (a
worker), with the same machine code."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from batches.models import Hold
from batches.services import create_batch, release_hold, start_batch
from core.errors import DomainError
from lines.models import CellDesign, Line, Route
from quality.nonconformance import open_nonconformance

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}


def test_a_refused_disposition_reads_in_japanese_and_stays_english_in_the_api(
    worked_batch, signed_in, api_as, quality_engineer
):
    hold = Hold.objects.filter(batch=worked_batch(4), status=Hold.Status.OPEN).first()
    release_hold(hold, by=quality_engineer, disposition="release", reason="checked")
    asked = {"disposition": "release", "reason": "again", "confirm": "on"}

    page = signed_in(quality_engineer).post(
        reverse("hold-disposition", args=[hold.pk]), asked, follow=True, **JA
    )
    assert "保留は「処置済み」から「処置済み」には変更できません。" in page.content.decode()

    body = {"disposition": "release", "reason": "again"}
    for headers in ({}, JA):  # the API's detail is English even to a Japanese client
        response = api_as(quality_engineer).post(
            f"/api/v1/holds/{hold.pk}/release", body, format="json", **headers
        )
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        assert response.json()["detail"] == "A hold cannot go from closed to closed."


def test_a_refused_ncr_step_reads_in_japanese_and_stays_english_in_the_api(
    plant, signed_in, api_as, line_engineer, quality_engineer
):
    ncr = open_nonconformance(
        title="Misaligned stack",
        description="Two cells offset",
        line=Line.objects.get(code="proto"),
        by=quality_engineer,
    )
    action = {
        "kind": "corrective",
        "description": "Re-teach the stacker",
        "owner": line_engineer.username,
        "due_date": "2026-12-04",
    }
    # An action before the root cause is found: the report is still open.
    page = signed_in(line_engineer).post(
        reverse("ncr-action-add", args=[ncr.code]), action, follow=True, **JA
    )
    assert f"{ncr.code} は「未処置」のため、対策の追加はできません。" in page.content.decode()

    response = api_as(line_engineer).post(f"/api/v1/ncrs/{ncr.code}/actions", action, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["detail"] == f"Cannot add an action to {ncr.code}: it is open."
    assert ncr.actions.count() == 0


def test_starting_a_started_batch_is_refused_in_the_pages_language(
    proto_batch, signed_in, line_engineer
):
    start_batch(proto_batch, by=line_engineer)
    client = signed_in(line_engineer)
    url = reverse("batch-start", args=[proto_batch.code])

    japanese = client.post(url, follow=True, **JA).content.decode()
    assert "バッチは「進行中」から「進行中」には変更できません。" in japanese
    assert "cannot go from" not in japanese

    english = client.post(url, follow=True).content.decode()
    assert "A batch cannot go from in_progress to in_progress." in english

    # Where no request chose a language (a Celery worker, a management command): English.
    with pytest.raises(DomainError) as refused:
        start_batch(proto_batch, by=line_engineer)
    assert refused.value.code == "invalid_transition"
    assert refused.value.detail == "A batch cannot go from in_progress to in_progress."


def test_a_refusal_keeps_its_values_in_japanese_word_order(
    worked_batch, signed_in, api_as, quality_engineer
):
    hold = Hold.objects.filter(batch=worked_batch(4), status=Hold.Status.OPEN).first()
    ncr = open_nonconformance(
        title="Misaligned stack",
        description="Two cells offset",
        line=Line.objects.get(code="proto"),
        by=quality_engineer,
        holds=[hold],
    )
    page = signed_in(quality_engineer).post(
        reverse("ncr-hold-add", args=[ncr.code]), {"hold": hold.pk}, follow=True, **JA
    )
    assert f"{ncr.code} はすでに保留 {hold.pk} を対象にしています。" in page.content.decode()

    response = api_as(quality_engineer).post(
        f"/api/v1/ncrs/{ncr.code}/holds", {"hold": hold.pk}, format="json"
    )
    assert response.status_code == 409
    assert response.json() == {
        "code": "hold_already_covered",
        "detail": f"{ncr.code} already covers hold {hold.pk}.",
        "errors": {},
    }


def test_coded_values_read_as_words_in_japanese_and_as_codes_in_english(plant, line_engineer):
    line = Line.objects.get(code="proto")
    plan = {
        "line": line,
        "design": CellDesign.objects.get(code="SSB-5AH-P1"),
        "route": Route.objects.get(line=line, code="std"),
        "quantity": 2,
        "by": line_engineer,
        "material_lots": {"cathode": "SE-2611-01"},  # an electrolyte lot
    }
    with translation.override("ja"), pytest.raises(DomainError) as japanese:
        create_batch(**plan)
    assert japanese.value.detail == (
        "ロット SE-2611-01 は「固体電解質シート」のロットです（必要なのは「複合正極シート」）。"
    )
    with pytest.raises(DomainError) as english:
        create_batch(**plan)
    assert english.value.detail == "Lot SE-2611-01 is electrolyte, not cathode."
    assert japanese.value.code == english.value.code == "wrong_lot_role"


def test_refused_thresholds_are_explained_in_japanese_beside_the_rule(
    plant, signed_in, quality_engineer
):
    url = reverse("hold-rule-supersede", args=["batch_insulation_failures"])
    response = signed_in(quality_engineer).post(url, {"failures": "0", "reason": "tighter"}, **JA)
    page = response.content.decode()
    assert response.status_code == 400
    refused = page.index('id="rule-batch_insulation_failures-refused"')
    beside = page[refused : page.index("</div>", refused)]
    assert "しきい値に誤りがあります。 failures: 正の数を入力してください。" in beside
