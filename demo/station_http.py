"""A station's side of the station API over HTTP, as equipment talks to it.

Used by the line simulator, the ingestion benchmark and the process tests: one keep-alive
connection, JSON in and out, and retries on connection errors and 5xx with the SAME body (the
event_id makes a retry harmless). A 4xx is returned to the caller, never raised.
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    body: Any
    seconds: float
    attempts: int

    @property
    def code(self) -> str:
        return self.body.get("code", "") if isinstance(self.body, dict) else ""


class StationHTTP:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 0,
        scheme: str = "Bearer",  # "Token" for an engineer's or a sensor gateway's personal token
    ) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.scheme = scheme
        self.timeout = timeout
        self.max_attempts = max_attempts  # 0: keep trying until the server answers
        self.retries = 0
        self._connection: http.client.HTTPConnection | None = None

    def _conn(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Authorization": f"{self.scheme} {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        attempt, delay = 0, 0.2
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                conn = self._conn()
                conn.request(method, self.prefix + path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                status = response.status
                retry_after = response.getheader("Retry-After")
            except (OSError, http.client.HTTPException):
                # Refused, reset, timed out: the server restarts or is overloaded; same body again.
                self.close()
                status, payload, retry_after = 0, b"", None
            seconds = time.perf_counter() - started
            # Throttled (429) or unavailable (503): the same body again once the server says so.
            again = status in (0, 429) or status >= 500
            if not again or (self.max_attempts and attempt >= self.max_attempts):
                try:
                    parsed = json.loads(payload) if payload else None
                except ValueError:
                    parsed = payload.decode(errors="replace")
                return Reply(status, parsed, seconds, attempt)
            self.retries += 1
            wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
            time.sleep(min(wait, 30.0))
            delay = min(delay * 2, 5.0)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body)

    def post_results(self, results: list[dict]) -> Reply:
        return self.post("/api/v1/station/results", {"results": results})

    def post_cycler_file(
        self, *, cell: str, event_id: str, file_name: str, content: bytes, format: str = ""
    ) -> Reply:
        """Upload a formation cycler file as multipart/form-data, as formation equipment does."""
        boundary = f"----mes-{secrets.token_hex(12)}"
        fields = {"cell": cell, "event_id": event_id, **({"format": format} if format else {})}
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request(
            "POST",
            "/api/v1/station/cycler-files",
            raw=b"".join(parts),
            content_type=f"multipart/form-data; boundary={boundary}",
        )
