"""The MQTT bridge's heartbeat, for GET /api/v1/health/ingestion.

The bridge (stations/mqtt.py) writes one key in the shared cache (settings.CACHES: Redis when the
Celery broker is Redis, files under .data/ otherwise; either way every process of the install
reads the same key): whether it is connected, when it last received a message, its counts. The
health view reads it; a heartbeat older than STALE_AFTER_S means the bridge is not running.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone

KEY = "mqtt-bridge-health"
HEARTBEAT_S = 5.0
# Three missed heartbeats: the process is gone or stuck.
STALE_AFTER_S = 3 * HEARTBEAT_S


def write(status: dict[str, Any]) -> None:
    cache.set(KEY, {**status, "heartbeat_at": timezone.now().isoformat()}, timeout=None)


def read(now: datetime | None = None) -> dict[str, Any] | None:
    """The bridge's last heartbeat with `running` (heartbeat recent) added; None when no bridge
    ever ran against this install, or the cache cannot be reached."""
    try:
        status = cache.get(KEY)
    except Exception:  # Redis away: the health check itself must still answer
        return None
    if not isinstance(status, dict):
        return None
    now = now or timezone.now()
    beat = datetime.fromisoformat(status["heartbeat_at"])
    running = (now - beat).total_seconds() <= STALE_AFTER_S
    return {
        **status,
        "running": running,
        # A bridge that stopped cannot say it lost the broker: connected only while it beats.
        "connected": bool(status.get("connected")) and running,
    }
