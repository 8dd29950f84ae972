"""Throughput and memory of formation.cycler: a file read, analysed (every cycle, steps, dQ/dV),
its measurements and curves computed: everything the formation bridge does but the few rows it
writes.

Run from the repository root:  python -m bench cycler  (or python bench/bench_cycler.py
[--rows 1000000] [--repeat 3] [--memory-rows 4000000] [--storage-mb 200])

Measures a generated plain CSV (formation-like: rest, CC-CV charge, rest, CC discharge, repeated,
one row a second) and every sample file in ../shared/data/cycler/ when that folder exists. Prints
the best of --repeat runs, so the figure is the code's speed rather than a cold disk cache. Then
the peak memory of reading a larger generated file, in a fresh process (its peak resident size
over the size it had after importing), beside the file's size and the size of the arrays read.
Last, the peak memory of uploading and downloading a --storage-mb file through the cycler storage
(formation/storage.py), on the file system and in an S3 bucket (moto's server on loopback, when
moto is installed): streamed, the peak stays a few MiB whatever the file's size.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from formation.cycler import (  # noqa: E402
    analyse,
    formation_curves,
    formation_features,
    read_cycler_file,
)

SAMPLES = Path(os.environ.get("CYCLER_SAMPLES") or ROOT.parent / "shared" / "data" / "cycler")


def write_formation_csv(path: Path, rows: int) -> None:
    """A 1 s log of repeated 1 Ah formation cycles, `rows` rows long."""
    t = np.arange(rows, dtype=np.float64)
    phase = t % 9000.0  # a 2.5 h cycle: 600 s rest, 3600 s CC, 900 s CV, 300 s rest, 3600 s dis
    current = np.zeros(rows)
    voltage = np.full(rows, 3.3)
    cc = (phase >= 600) & (phase < 4200)
    cv = (phase >= 4200) & (phase < 5100)
    dis = (phase >= 5400) & (phase < 9000)
    current[cc] = 1.0
    voltage[cc] = 3.3 + 0.9 * (phase[cc] - 600) / 3600
    current[cv] = 1.0 - 0.9 * (phase[cv] - 4200) / 900
    voltage[cv] = 4.2
    voltage[(phase >= 5100) & (phase < 5400)] = 4.1
    current[dis] = -1.0
    voltage[dis] = 4.1 - 1.1 * (phase[dis] - 5400) / 3600
    temperature = 25.0 + 2.0 * np.abs(current)
    step = np.searchsorted([600, 4200, 5100, 5400], phase, side="right") + 1
    table = np.column_stack([t, step, voltage, current, temperature])
    np.savetxt(
        path,
        table,
        delimiter=",",
        fmt=["%.1f", "%d", "%.5f", "%.5f", "%.2f"],
        header="Time(s),Step,Voltage(V),Current(A),Temperature(C)",
        comments="",
    )


def measure(path: Path, repeat: int) -> tuple[int, float, float]:
    """(rows, best read seconds, best read+features seconds)."""
    best_read = best_total = float("inf")
    rows = 0
    for _ in range(repeat):
        start = time.perf_counter()
        data = read_cycler_file(path)
        read_done = time.perf_counter()
        analysis = analyse(data)
        formation_features(analysis)
        formation_curves(analysis)
        end = time.perf_counter()
        rows = data.rows
        best_read = min(best_read, read_done - start)
        best_total = min(best_total, end - start)
    return rows, best_read, best_total


def report(label: str, rows: int, read_s: float, total_s: float) -> None:
    print(
        f"{label:<40} {rows:>8} rows  read {read_s * 1000:8.1f} ms  "
        f"read+analysis {total_s * 1000:8.1f} ms  {rows / total_s:>12,.0f} rows/s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-rows", type=int, default=4_000_000)
    parser.add_argument("--storage-mb", type=int, default=200)
    args = parser.parse_args(argv if argv is not None else [])

    with tempfile.TemporaryDirectory() as scratch:
        generated = Path(scratch) / "formation.csv"
        write_formation_csv(generated, args.rows)
        report(f"generated CSV ({args.rows:,} rows)", *measure(generated, args.repeat))
    if SAMPLES.is_dir():
        for path in sorted(SAMPLES.iterdir()):
            if path.is_file() and path.name != "README.md":
                report(path.name, *measure(path, args.repeat))
    else:
        print(f"(no sample folder at {SAMPLES})")
    with tempfile.TemporaryDirectory() as scratch:
        large = Path(scratch) / "large.csv"
        write_formation_csv(large, args.memory_rows)
        report_memory(large)
    if args.storage_mb:
        report_storage_memory(args.storage_mb)


# VmHWM (peak resident size) of this process's own memory map, which exec starts afresh; the
# ru_maxrss of a child can carry its parent's peak across fork and exec.
_MEMORY_PROBE = """
import sys
sys.path.insert(0, sys.argv[2])
from formation.cycler import read_cycler_file

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(key + ":"))

before = status("VmRSS")
data = read_cycler_file(sys.argv[1])
after = status("VmHWM")
arrays = sum(a.nbytes for a in (data.time_s, data.voltage_v, data.current_a, data.step,
                                data.cycle, data.temperature_c) if a is not None)
print(data.rows, before, after, arrays)
"""


def report_memory(path: Path) -> None:
    """Peak memory of read_cycler_file on `path`, in a process of its own (KiB from /proc)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path), str(ROOT)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    rows, before, after, arrays = (int(x) for x in out)
    mib = 1024 * 1024
    print(
        f"{'peak memory, ' + path.name:<40} {rows:>8} rows  file {path.stat().st_size / mib:7.1f} "
        f"MiB  arrays {arrays / mib:7.1f} MiB  peak over imports {(after - before) / 1024:7.1f} MiB"
    )


# The station upload's own code path without the database: the multipart body read from a file
# through CyclerFileUploadHandler, stored by formation.storage, then sent back as the cell page
# sends it (open_stream in a FileResponse). Peak resident size over the size after imports.
_STORAGE_PROBE = """
import os, sys
sys.path.insert(0, sys.argv[3])
os.environ["DJANGO_SETTINGS_MODULE"] = "mes.settings"
import django
django.setup()
from django.core.handlers.wsgi import WSGIRequest
from django.http import FileResponse
from formation import storage
from stations.api.views import CyclerFileUploadHandler

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(key + ":"))

def reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")

body, boundary = sys.argv[1], sys.argv[2]
with open(body, "rb") as stream:
    request = WSGIRequest({
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "wsgi.input": stream,
        "CONTENT_TYPE": "multipart/form-data; boundary=" + boundary,
        "CONTENT_LENGTH": str(os.path.getsize(body)),
    })
    request.upload_handlers = [CyclerFileUploadHandler(request)]
    storage.cycler_storage().exists("warm-up")  # its client made and imported (boto3) first
    reset_peak()
    before = status("VmRSS")
    upload = request.FILES["file"]
    name = storage.stored_name("BENCH", upload.sha256)
    storage.store(name, upload.path)
    uploaded = status("VmHWM") - before
reset_peak()
before = status("VmRSS")
stream, size = storage.open_stream(name)
response = FileResponse(stream, as_attachment=True, filename="run.csv")
response.block_size = storage.CHUNK_BYTES
sent = sum(len(chunk) for chunk in response)
response.close()
downloaded = status("VmHWM") - before
assert sent == size == upload.size, (sent, size, upload.size)
storage.cycler_storage().delete(name)
print(upload.size, uploaded, downloaded)
"""


def report_storage_memory(megabytes: int) -> None:
    """Peak memory of a `megabytes` MB cycler file uploaded and downloaded through the storage,
    in processes of their own, on the file system and (with moto) in an S3 bucket."""
    boundary = "benchboundary7d1f"
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body"
        with body.open("wb") as out:
            out.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="run.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
            )
            for _ in range(megabytes):
                out.write(os.urandom(1_000_000).replace(b"\r\n--", b"\n\n--"))
            out.write(f"\r\n--{boundary}--\r\n".encode())
        env = {
            **os.environ,
            "DATABASE_URL": "postgresql://bench@127.0.0.1:9/unused",  # never connected to
            "MES_MEDIA_ROOT": str(Path(scratch) / "media"),
        }
        _storage_probe("file system", body, boundary, {**env, "MES_CYCLER_STORAGE": "filesystem"})
        try:
            import boto3
            from moto.server import ThreadedMotoServer
        except ImportError:
            print("(S3: moto is not installed)")
            return
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            s3 = {
                "MES_CYCLER_STORAGE": "s3",
                "MES_CYCLER_S3_BUCKET": "bench-cycler",
                "MES_CYCLER_S3_ENDPOINT_URL": endpoint,
                "MES_CYCLER_S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
            }
            boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1",
                aws_access_key_id="bench", aws_secret_access_key="bench",
            ).create_bucket(Bucket="bench-cycler")  # fmt: skip
            _storage_probe("S3 (moto on loopback)", body, boundary, {**env, **s3})
        finally:
            server.stop()


def _storage_probe(label: str, body: Path, boundary: str, env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _STORAGE_PROBE, str(body), boundary, str(ROOT)],
        capture_output=True, text=True, check=True, env=env, cwd=ROOT,
    ).stdout.split()  # fmt: skip
    size, uploaded, downloaded = (int(x) for x in out[-3:])
    print(
        f"{'cycler storage, ' + label:<40} file {size / 1024 / 1024:7.1f} MiB  peak over imports: "
        f"upload {uploaded / 1024:6.1f} MiB  download {downloaded / 1024:6.1f} MiB"
    )


if __name__ == "__main__":
    main()
