"""The one exception this package raises for a file that cannot be trusted as data."""

from __future__ import annotations

# The check codes a rejection can carry. Callers (the formation worker, the upload API) store the
# code and show the detail sentence to the person who uploaded the file.
CHECKS = frozenset(
    {
        "unknown_format",  # content matches no supported cycler format
        "unreadable",  # a supported format, but the parser could not make sense of it
        "empty",  # no bytes, or a header and no data rows
        "truncated",  # cut short: last text row incomplete, binary container shorter than it says
        "time_not_monotonic",  # the time axis goes backwards
        "missing_columns",  # time, voltage or current is not in the file
        "unknown_units",  # a column states a unit we cannot convert
    }
)


class CyclerFileRejected(Exception):  # the name is the domain's word, not an error type
    """A cycler file that cannot be trusted as data.

    ``check`` is one of :data:`CHECKS`; ``detail`` is a sentence naming what is wrong and where
    (row, line or byte offset), fit to show to the operator who uploaded the file.
    """

    def __init__(self, check: str, detail: str) -> None:
        if check not in CHECKS:
            raise ValueError(f"unknown check code {check!r}")
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail
