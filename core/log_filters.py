"""Logging filters: what the logs should not shout about."""

from __future__ import annotations

import logging

# Answers of the station interlock (track-in: wrong step, on hold, scrapped; a result for an
# unknown cell): the system working as meant, told to the equipment, which acts on it. A line
# running normally gives thousands a shift; as warnings they would bury the ones that matter.
INTERLOCK_STATUSES = {404, 409}
STATION_API = "/api/v1/station/"


class StationInterlockAnswers(logging.Filter):
    """Lowers django.request's warning for an interlock answer of the station API to DEBUG.
    A 400, 401 or 413 there (equipment sending bad data or a bad token) stays a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        path = getattr(request, "path", "")
        if getattr(record, "status_code", None) in INTERLOCK_STATUSES and path.startswith(
            STATION_API
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True
