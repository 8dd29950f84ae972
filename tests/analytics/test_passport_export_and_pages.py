"""The batch's passport ZIP built by the worker's task, the passport pages, the labels' passport
QR code, and releasing master data: who may, what it checks, and that a release never changes."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from analytics.master_data import as_data, release_master_data
from analytics.models import PassportExport, PassportMasterData
from analytics.passport_exports import build_export, request_export
from analytics.tasks import build_passport_export
from audit.models import Event
from batches.models import Batch
from batches.services import create_batch, hold_cell, scrap_cell
from lines.models import CellDesign, Line, Route

LOTS = {"cathode": "CAT-2611-A-01", "electrolyte": "SE-2611-01", "pouch": "POUCH-2611-01"}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def mixed_batch(plant, stations, record, line_engineer, quality_engineer) -> Batch:
    """Five cells: two good, one on hold, one scrapped after forming, one only stacked."""
    line = Line.objects.get(code="proto")
    batch = create_batch(
        line=line,
        design=CellDesign.objects.get(code="SSB-5AH-P1"),
        route=Route.objects.get(line=line, code="std"),
        quantity=5,
        by=line_engineer,
        material_lots=LOTS,
    )
    cells = list(batch.cells.order_by("position"))
    for cell in cells:
        record(cell, stations["PR-STK-1"], material_lots=LOTS)
    for cell in cells[:4]:
        record(cell, stations["PR-PRS-1"], equipment_ref="L1")
        record(cell, stations["PR-FRM-1"])
    hold_cell(cells[2], by=quality_engineer, reason="tab looks bent")
    scrap_cell(cells[3], by=quality_engineer, reason="swollen")
    return batch


def good_serials(batch: Batch) -> set[str]:
    return {c.serial for c in batch.cells.order_by("position")[:2]}


# ---------------------------------------------------------------- the ZIP export


def test_the_worker_zips_one_passport_per_good_cell(
    transactional_db, mixed_batch, media, line_engineer, signed_in, operator
):
    # Committed, as a worker sees it (the task closes stale connections, which would end a test's
    # transaction); sent by hand, not through the broker.
    export = request_export(mixed_batch, by=line_engineer, send=False)
    assert export.status == PassportExport.Status.REQUESTED

    assert build_passport_export(export.pk) is True

    export.refresh_from_db()
    assert export.status == PassportExport.Status.READY
    assert export.cells == 2
    assert export.finished_at is not None
    with zipfile.ZipFile(media / export.file) as archive:
        names = set(archive.namelist())
        assert names == {f"{serial}.json" for serial in good_serials(mixed_batch)}
        for name in names:
            serial = name.removesuffix(".json")
            api = signed_in(operator).get(f"/api/v1/cells/{serial}/passport").json()
            assert json.loads(archive.read(name)) == api
    # Delivered twice, it is built once.
    assert build_passport_export(export.pk) is False


def test_the_download_serves_a_ready_export_only(
    mixed_batch, media, line_engineer, signed_in, operator
):
    export = request_export(mixed_batch, by=line_engineer)
    url = f"/passport-exports/{export.pk}/"
    assert signed_in(operator).get(url).status_code == 404  # not built yet
    build_export(export.pk)

    response = signed_in(operator).get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    body = b"".join(response.streaming_content)
    assert len(zipfile.ZipFile(io.BytesIO(body)).namelist()) == 2
    assert signed_in(None).get(url).status_code == 302  # to the sign-in page


def test_the_batch_page_requests_and_lists_exports(
    mixed_batch, media, signed_in, operator, django_assert_max_num_queries
):
    client = signed_in(operator)
    response = client.post(f"/batches/{mixed_batch.code}/passports")
    assert response.status_code == 302
    export = PassportExport.objects.get(batch=mixed_batch)
    assert export.requested_by == operator
    assert export.status == PassportExport.Status.REQUESTED
    assert Event.objects.filter(verb="passport_export_requested", subject=mixed_batch.code).exists()
    build_export(export.pk)
    build_export(request_export(mixed_batch, by=operator).pk)  # more exports, no more queries

    client.get(f"/batches/{mixed_batch.code}/")  # computes and stores the batch's figures
    with django_assert_max_num_queries(25):
        page = client.get(f"/batches/{mixed_batch.code}/")

    assert page.status_code == 200
    assert f'href="/passport-exports/{export.pk}/"' in page.content.decode()


def test_an_export_that_cannot_be_written_is_failed_saying_why(
    mixed_batch, settings, tmp_path, line_engineer, signed_in, operator
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker
    export = request_export(mixed_batch, by=line_engineer)

    assert build_export(export.pk) is None

    export.refresh_from_db()
    assert export.status == PassportExport.Status.FAILED
    assert export.error
    page = signed_in(operator).get(f"/batches/{mixed_batch.code}/").content.decode()
    assert f'data-export="{export.pk}"' in page and "Failed" in page
    assert signed_in(operator).get(f"/passport-exports/{export.pk}/").status_code == 404


def test_the_command_writes_the_zip(mixed_batch, media, capsys):
    call_command("export_passports", mixed_batch.code)
    export = PassportExport.objects.get(batch=mixed_batch)
    assert export.status == PassportExport.Status.READY
    with zipfile.ZipFile(media / export.file) as archive:
        assert len(archive.namelist()) == 2
    assert "2 passports" in capsys.readouterr().out


# ---------------------------------------------------------------- pages


def test_the_cell_passport_page_shows_the_four_parts(
    mixed_batch, signed_in, operator, django_assert_max_num_queries
):
    cell = mixed_batch.cells.order_by("position").first()
    client = signed_in(operator)
    assert (
        f"/cells/{cell.serial}/passport/" in client.get(f"/cells/{cell.serial}/").content.decode()
    )

    with django_assert_max_num_queries(16):
        page = client.get(f"/cells/{cell.serial}/passport/")

    assert page.status_code == 200
    text = page.content.decode()
    for title in (
        "General product information",
        "Material composition",
        "Performance and durability",
        "Carbon footprint",
    ):
        assert title in text
    assert f"urn:pilotlinedemo:{cell.serial.encode().hex()}" in text


def test_the_passport_page_of_a_held_cell_says_why(mixed_batch, signed_in, operator):
    held = mixed_batch.cells.order_by("position")[2]
    page = signed_in(operator).get(f"/cells/{held.serial}/passport/")
    assert page.status_code == 409
    assert 'data-code="on_hold"' in page.content.decode()


def test_labels_can_carry_the_passport_url(mixed_batch, signed_in, operator):
    client = signed_in(operator)
    cell = mixed_batch.cells.order_by("position").first()
    url = f"http://testserver/cells/{cell.serial}/passport/"
    assert url not in client.get(f"/batches/{mixed_batch.code}/labels/").content.decode()
    page = client.get(f"/batches/{mixed_batch.code}/labels/?qr=passport")
    assert page.status_code == 200
    assert f"<title>{url}</title>" in page.content.decode()


# ---------------------------------------------------------------- master data


def released(code: str) -> PassportMasterData:
    return PassportMasterData.objects.get(design__code=code, status="released")


def post_master_data(client, code: str, data: dict, note: str = "warranty extended"):
    return client.post(f"/designs/{code}/passport/", {"data": json.dumps(data), "note": note})


def test_quality_releases_a_new_version_that_supersedes(plant, signed_in, quality_engineer):
    first = released("SSB-5AH-P1")
    data = {**as_data(first), "warranty_period": "--06"}

    response = post_master_data(signed_in(quality_engineer), "SSB-5AH-P1", data)

    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == "superseded"
    second = released("SSB-5AH-P1")
    assert (second.version, second.warranty_period) == (first.version + 1, "--06")
    assert second.released_by == quality_engineer
    assert Event.objects.filter(verb="passport_master_data_released", subject="SSB-5AH-P1").exists()


@pytest.mark.parametrize("persona", ["operator", "line_engineer"])
def test_only_quality_and_admin_release_master_data(request, plant, signed_in, persona):
    user = request.getfixturevalue(persona)
    client = signed_in(user)
    page = client.get("/designs/SSB-5AH-P1/passport/")
    assert page.status_code == 200
    assert "Release a new version" not in page.content.decode()
    before = PassportMasterData.objects.count()

    response = post_master_data(client, "SSB-5AH-P1", as_data(released("SSB-5AH-P1")))

    assert response.status_code == 403
    assert PassportMasterData.objects.count() == before


def test_admin_may_release_master_data(
    plant, signed_in, admin_persona, django_assert_max_num_queries
):
    client = signed_in(admin_persona)
    with django_assert_max_num_queries(10):
        page = client.get("/designs/SSB-5AH-P1/passport/")
    assert page.status_code == 200
    assert "Release a new version" in page.content.decode()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"warranty_period": "P2Y"}, "warranty_period"),
        ({"passport_namespace": "Pilot-Line"}, "passport_namespace"),
        ({"temperature_range_idle_state_c": 80}, "temperature_range_idle_state_c"),
        ({"carbon_footprint_stages": {"Use": 1.0}}, "carbon_footprint_stages"),
        ({"manufacturer_web": "not a url"}, "manufacturer_web"),
    ],
)
def test_bad_master_data_is_400_and_writes_nothing(
    plant, signed_in, quality_engineer, change, field
):
    data = {**as_data(released("SSB-5AH-P1")), **change}
    before = (PassportMasterData.objects.count(), Event.objects.count())

    response = post_master_data(signed_in(quality_engineer), "SSB-5AH-P1", data)

    assert response.status_code == 400
    assert field in response.context["errors"]
    assert (PassportMasterData.objects.count(), Event.objects.count()) == before


def test_every_role_of_the_bill_of_materials_needs_a_substance(plant, quality_engineer):
    design = CellDesign.objects.get(code="SSB-5AH-P1")
    data = as_data(released("SSB-5AH-P1"))
    data["materials"] = [m for m in data["materials"] if m["role"] != "pouch"]
    from core.errors import DomainError

    with pytest.raises(DomainError) as refused:
        release_master_data(design, data, by=quality_engineer, note="drop the pouch")
    assert refused.value.status == 400
    assert "pouch" in " ".join(refused.value.errors["materials"])


def test_a_released_version_never_changes(plant):
    version = released("SSB-20AH-Y1")
    with pytest.raises(IntegrityError), transaction.atomic():
        PassportMasterData.objects.filter(pk=version.pk).update(warranty_period="--01")
    with pytest.raises(IntegrityError), transaction.atomic():
        PassportMasterData.objects.filter(pk=version.pk).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        PassportMasterData.objects.filter(pk=version.pk).update(
            status="superseded", carbon_footprint_class="A"
        )
    PassportMasterData.objects.filter(pk=version.pk).update(status="superseded")
    with pytest.raises(IntegrityError), transaction.atomic():
        PassportMasterData.objects.filter(pk=version.pk).update(status="released")
