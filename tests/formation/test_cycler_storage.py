"""Where cycler files are kept (formation/storage.py): under MEDIA_ROOT by default, or in an
S3-compatible bucket. The bucket here is moto's S3 server over real HTTP on loopback, standing in
for an external object store (MinIO, AWS): the upload, the worker and the download go through
django-storages and boto3 exactly as they would against one."""

from __future__ import annotations

import hashlib
import random
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import ProcessRun
from demo.cycler_files import formation_csv
from formation import storage
from mes.settings import cycler_storage_from_env
from stations.models import InboxEntry

URL = "/api/v1/station/cycler-files"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def pressed_cell(proto_batch, stations, record):
    cell = proto_batch.cells.get(position=1)
    record(cell, stations["PR-STK-1"])
    record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    return cell


def upload(station_client, cell, content: bytes, event_id: str):
    data = {"file": SimpleUploadedFile("ch03.csv", content), "cell": cell.serial}
    former = station_client("PR-FRM-1")
    return former.http.post(URL, {**data, "event_id": event_id}, format="multipart")


def files_under(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.is_file()] if folder.exists() else []


# ---------------------------------------------------------------- the file system (default)


def test_the_same_bytes_sent_again_are_stored_once_and_not_rewritten(
    pressed_cell, station_client, media_root, settings
):
    content = formation_csv(pressed_cell.batch.design, random.Random(1))
    assert upload(station_client, pressed_cell, content, "F-1").status_code == 202
    stored = Path(media_root) / InboxEntry.objects.get(event_id="F-1").payload["path"]
    first = stored.stat()

    # Another event with the same file (a station re-sending under a new id): the same name.
    assert upload(station_client, pressed_cell, content, "F-2").status_code == 202
    names = {e.payload["path"] for e in InboxEntry.objects.all()}
    sha256 = hashlib.sha256(content).hexdigest()
    assert names == {f"cycler/PR-FRM-1/{sha256}"}
    again = stored.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert files_under(Path(media_root)) == [stored]  # no spool left in cycler/incoming
    assert stored.stat().st_mode & 0o777 == settings.FILE_UPLOAD_PERMISSIONS


# ---------------------------------------------------------------- an S3-compatible bucket


@pytest.fixture(scope="module")
def s3_endpoint():
    server_module = pytest.importorskip("moto.server", reason="moto is not installed")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """A new bucket, and the cycler storage configured for it from the environment as a
    deployment would configure it."""
    import boto3

    name = f"cycler-{uuid.uuid4().hex[:12]}"
    for variable, value in {
        "MES_CYCLER_STORAGE": "s3",
        "MES_CYCLER_S3_BUCKET": name,
        "MES_CYCLER_S3_ENDPOINT_URL": s3_endpoint,
        "MES_CYCLER_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(variable, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    settings.STORAGES = {**settings.STORAGES, "cycler": cycler_storage_from_env()}
    return client, name


def objects(bucket) -> dict[str, int]:
    client, name = bucket
    listed = client.list_objects_v2(Bucket=name).get("Contents", [])
    return {item["Key"]: item["Size"] for item in listed}


def test_a_file_goes_through_upload_worker_and_download_via_the_bucket_alone(
    bucket, pressed_cell, station_client, process_pending, signed_in, operator, settings
):
    content = formation_csv(pressed_cell.batch.design, random.Random(2))
    sha256 = hashlib.sha256(content).hexdigest()
    response = upload(station_client, pressed_cell, content, "F-1")
    assert response.status_code == 202, response.content
    name = f"cycler/PR-FRM-1/{sha256}"
    assert objects(bucket) == {name: len(content)}
    assert InboxEntry.objects.get(event_id="F-1").payload["path"] == name

    process_pending()

    entry = InboxEntry.objects.get(event_id="F-1")
    assert (entry.status, entry.outcome) == ("processed", "pass"), entry.reason
    run = ProcessRun.objects.get(cell=pressed_cell, step__station_kind="formation")
    assert run.measurements.filter(name="first_discharge_capacity_ah").exists()

    link = f"/cells/{pressed_cell.serial}/runs/{run.pk}/cycler-file"
    page = signed_in(operator).get(link)
    assert page.status_code == 200
    assert int(page["Content-Length"]) == len(content)
    body = b"".join(page.streaming_content)
    assert body == content
    # Nothing of it on this host: not under MEDIA_ROOT, no spool or parsing copy left behind.
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert files_under(Path(settings.FILE_UPLOAD_TEMP_DIR)) == []

    client, name = bucket
    client.delete_object(Bucket=name, Key=f"cycler/PR-FRM-1/{sha256}")
    gone = signed_in(operator).get(link)
    assert gone.status_code == 404 and "Cycler file missing" in gone.content.decode()


def test_the_same_bytes_sent_again_are_not_uploaded_again(bucket, pressed_cell, station_client):
    content = formation_csv(pressed_cell.batch.design, random.Random(3))
    assert upload(station_client, pressed_cell, content, "F-1").status_code == 202
    client, name = bucket
    key = next(iter(objects(bucket)))
    first = client.head_object(Bucket=name, Key=key)
    assert upload(station_client, pressed_cell, content, "F-2").status_code == 202
    again = client.head_object(Bucket=name, Key=key)
    assert objects(bucket) == {key: len(content)}
    assert again["LastModified"] == first["LastModified"] and again["ETag"] == first["ETag"]


def test_a_file_larger_than_one_part_is_sent_in_parts_and_read_back_whole(bucket, tmp_path):
    # boto3 switches to a multipart upload past 8 MiB; parts are 8 MiB each.
    content = random.Random(4).randbytes(9 * 1024 * 1024 + 17)
    spooled = tmp_path / "spool" / "large.part"
    spooled.write_bytes(content)
    storage.store("cycler/PR-FRM-1/large", spooled)
    assert not spooled.exists()
    client, name = bucket
    head = client.head_object(Bucket=name, Key="cycler/PR-FRM-1/large")
    assert head["ContentLength"] == len(content) and head["ETag"].endswith('-2"')  # two parts

    stream, size = storage.open_stream("cycler/PR-FRM-1/large")
    read = hashlib.sha256()
    while chunk := stream.read(storage.CHUNK_BYTES):
        read.update(chunk)
    stream.close()
    assert (size, read.hexdigest()) == (len(content), hashlib.sha256(content).hexdigest())
    with storage.local_copy("cycler/PR-FRM-1/large") as path:
        assert path.name == "large" and path.read_bytes() == content
    assert not path.exists()


def test_a_file_gone_from_the_bucket_before_the_worker_read_it_is_rejected(
    bucket, pressed_cell, station_client, process_pending, signed_in, operator
):
    content = formation_csv(pressed_cell.batch.design, random.Random(5))
    assert upload(station_client, pressed_cell, content, "F-1").status_code == 202
    client, name = bucket
    key = next(iter(objects(bucket)))
    client.delete_object(Bucket=name, Key=key)

    process_pending()

    entry = InboxEntry.objects.get(event_id="F-1")
    assert (entry.status, entry.reason_code) == ("rejected", "unreadable")
    assert key in entry.reason
