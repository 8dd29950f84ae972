"""Where raw cycler files live: the "cycler" storage of settings.STORAGES, by default the local
file system under MEDIA_ROOT, or an S3-compatible bucket (MES_CYCLER_STORAGE=s3).

A file is stored once under its content's name, ``cycler/<station>/<sha256>``, the name the inbox
row records as payload["path"] (relative to MEDIA_ROOT on the file system, so the rows written
before the storage setting existed still name their files). Files go in and out in chunks: an
upload is spooled to a temporary file while it is hashed and then moved (file system) or sent
from that file in parts (S3); a download is streamed from the store as it is sent on.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

STORAGE = "cycler"  # its key in settings.STORAGES
CHUNK_BYTES = 1024 * 1024


def cycler_storage() -> Storage:
    return storages[STORAGE]


def stored_name(station_code: str, sha256: str) -> str:
    """A cycler file's name in the storage: the same bytes from a station are stored once."""
    return f"cycler/{station_code}/{sha256}"


def _local_path(storage: Storage, name: str) -> Path | None:
    """The file's path on this host, or None for a storage with no local files (S3)."""
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def spool_dir() -> Path:
    """Where an upload is written while it arrives: beside the stored files on the file system,
    so that storing it is a rename on the same file system; else the host's temporary folder."""
    local = _local_path(cycler_storage(), "cycler/incoming")
    if local is None:
        return Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir())
    local.mkdir(parents=True, exist_ok=True)
    return local


def store(name: str, spooled: Path) -> None:
    """Store the complete file at `spooled` (from spool_dir()) under `name`, and remove the spool.

    A name already stored holds the same bytes (it is their sha256): nothing is written again.
    """
    storage = cycler_storage()
    try:
        if storage.exists(name):
            return
        target = _local_path(storage, name)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if storage.file_permissions_mode is not None:
                spooled.chmod(storage.file_permissions_mode)
            # Atomic: a reader sees the whole file or none; a concurrent upload of the same
            # bytes replaces it with identical content.
            spooled.replace(target)
            return
        with spooled.open("rb") as handle:
            # S3Storage sends a file object in parts (boto3's managed upload), never whole.
            storage.save(name, File(handle, name=PurePosixPath(name).name))
    finally:
        spooled.unlink(missing_ok=True)


def store_bytes(name: str, content: bytes) -> None:
    """Store `content` under `name` (a small file made here, such as the demo's), like an upload."""
    with tempfile.NamedTemporaryFile(dir=spool_dir(), suffix=".part", delete=False) as spool:
        spool.write(content)
    store(name, Path(spool.name))


def open_stream(name: str) -> tuple[IO[bytes], int]:
    """(a binary stream of the stored file, its size), read from the store as it is consumed.

    Raises FileNotFoundError when nothing is stored under `name`.
    """
    handle = cycler_storage().open(name, "rb")
    size = handle.size
    s3_object = getattr(handle, "obj", None)
    if s3_object is not None:
        # django-storages' S3File downloads the whole object before its first read returns;
        # the object's own body streams it in chunks instead.
        handle.close()
        return s3_object.get()["Body"], size
    return handle, size


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A path on this host holding the stored file, for the readers that open files by path
    (galvani, fastnda, openpyxl): the stored file itself on the file system, else a temporary
    copy written in chunks and removed on leaving. It keeps the stored name, which the readers'
    messages quote."""
    storage = cycler_storage()
    local = _local_path(storage, name)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as scratch:
        copy = Path(scratch) / PurePosixPath(name).name
        stream, _ = open_stream(name)
        try:
            with copy.open("wb") as out:
                shutil.copyfileobj(stream, out, CHUNK_BYTES)
        finally:
            stream.close()
        yield copy
