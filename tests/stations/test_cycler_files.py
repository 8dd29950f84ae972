"""POST /station/cycler-files: the file is streamed to MEDIA_ROOT with its sha256 and its inbox
row is stored for a worker to parse (tests/ingestion/test_cycler_processing.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from stations.models import InboxEntry

URL = "/api/v1/station/cycler-files"
CONTENT = b"time_s,voltage_v,current_a\n0,3.1,0.5\n1,3.2,0.5\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def former(station_client):
    return station_client("PR-FRM-1")


def upload(former, *, event_id="F-1", cell="CELL-1", content=CONTENT, **fields):
    data = {"file": SimpleUploadedFile("run.csv", content), "cell": cell, "event_id": event_id}
    return former.http.post(URL, {**data, **fields}, format="multipart")


def test_cycler_file_is_stored_untouched_with_its_sha256_until_a_worker_parses_it(
    former, media_root
):
    response = upload(former)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    row = InboxEntry.objects.get()
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    assert (row.kind, row.status) == ("cycler_file", "pending")
    # A .csv may hold any vendor's text export: its format is detected when it is read.
    assert row.payload["sha256"] == sha256 and row.payload["format"] == ""
    stored = Path(media_root) / row.payload["path"]
    assert stored.read_bytes() == CONTENT
    assert not list((Path(media_root) / "cycler" / "incoming").iterdir())
    status = former.status_of("F-1").json()
    assert (status["status"], status["kind"]) == ("pending", "cycler_file")


@pytest.mark.parametrize(
    ("named", "stored"),
    [("arbin", "arbin_csv"), ("mpr", "biologic_mpr"), ("maccor_txt", "maccor_txt")],
)
def test_a_named_format_is_stored_in_the_readers_words(former, media_root, named, stored):
    assert upload(former, format=named).status_code == 202
    assert InboxEntry.objects.get().payload["format"] == stored


def test_an_unknown_format_is_refused_and_nothing_is_stored(former, media_root):
    response = upload(former, format="xlsx")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "format" in response.json()["errors"]
    assert not InboxEntry.objects.exists()
    assert not [f for f in (Path(media_root) / "cycler").rglob("*") if f.is_file()]


def test_cycler_file_sent_again_is_a_duplicate(former):
    upload(former)
    assert upload(former).json() == {"accepted": 0, "duplicates": 1}
    assert InboxEntry.objects.count() == 1


def test_cycler_file_with_a_reused_event_id_is_refused(former):
    upload(former)
    response = upload(former, content=CONTENT + b"2,3.3,0.5\n")
    assert response.status_code == 409
    assert response.json()["code"] == "event_id_reused"
    assert InboxEntry.objects.count() == 1


def test_cycler_file_without_file_is_refused(former):
    response = former.http.post(URL, {"cell": "CELL-1", "event_id": "F-1"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "file" in response.json()["errors"]
    assert not InboxEntry.objects.exists()


def test_cycler_file_as_json_is_refused(former):
    response = former.post_json(URL, {"cell": "CELL-1", "event_id": "F-1"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_format"


def test_cycler_file_over_512_mib_is_refused_before_reading(former):
    response = former.http.generic(
        "POST",
        URL,
        b"",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(513 * 1024 * 1024 + 1024 * 1024),
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not InboxEntry.objects.exists()
