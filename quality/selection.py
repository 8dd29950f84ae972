"""Which results a quality figure is computed over: the filters every quality read accepts (SPC,
yield, Pareto, exports; pages and API alike), parsed and checked in one place.

The contract's filters are `line`, `step` (a station kind), `station`, `equipment`, `batch`,
`design`, `recipe_version`, `lot` (a material lot: the cells that consumed it or a lot cut from it),
`since` and `until` (RFC 3339, on the results' `occurred_at`). An unknown code is a field error, so
a mistyped filter never silently widens the selection to everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from django import forms
from django.db.models import QuerySet

from batches.models import (
    Batch,
    CellStep,
    Consumption,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from batches.selectors import lot_and_descendant_ids
from core.validation import AHEAD_ALLOWED
from lines.models import CellDesign, Line, Station, StationKind


class SelectionForm(forms.Form):
    line = forms.ModelChoiceField(Line.objects.all(), to_field_name="code", required=False)
    step = forms.ChoiceField(choices=StationKind.choices, required=False)
    station = forms.ModelChoiceField(
        Station.objects.select_related("line"), to_field_name="code", required=False
    )
    equipment = forms.CharField(max_length=60, required=False)
    batch = forms.ModelChoiceField(Batch.objects.all(), to_field_name="code", required=False)
    design = forms.ModelChoiceField(CellDesign.objects.all(), to_field_name="code", required=False)
    recipe_version = forms.IntegerField(min_value=1, required=False)
    lot = forms.ModelChoiceField(MaterialLot.objects.all(), to_field_name="code", required=False)
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)

    def clean(self) -> dict:
        data = super().clean()
        for name in ("since", "until"):
            # In UTC: PostgreSQL refuses offsets beyond +-15:59, which RFC 3339 text may carry.
            if data.get(name) is not None:
                try:
                    data[name] = data[name].astimezone(UTC)
                except OverflowError:
                    self.add_error(name, "Out of range.")
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be later than since.")
        return data


@dataclass(frozen=True)
class Selection:
    """The results chosen by the filters; empty fields select everything."""

    line: Line | None = None
    step: str = ""
    station: Station | None = None
    equipment: str = ""
    batch: Batch | None = None
    design: CellDesign | None = None
    recipe_version: int | None = None
    lot: MaterialLot | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> tuple[Selection | None, dict[str, list[str]]]:
        """The selection the query asks for, or None and the field errors."""
        form = SelectionForm(query)
        if not form.is_valid():
            return None, {field: list(errors) for field, errors in form.errors.items()}
        return cls(**{k: v for k, v in form.cleaned_data.items() if v not in (None, "")}), {}

    def runs(self) -> QuerySet[ProcessRun]:
        """The process runs selected, not ordered."""
        return ProcessRun.objects.filter(**self._run_filters(""))

    def measurements(self, name: str | None = None) -> QuerySet[Measurement]:
        """The measurements of the selected runs (of one parameter if named), not ordered. The
        line, step, station and time are read off the measurements' own copies of their runs'
        (batches.Measurement), the line and step as their stations' ids: a parameter's points
        at a step come from its time index alone."""
        rows = Measurement.objects.filter(
            **self._filters(MEASUREMENT_PATHS, as_stations=("line", "step"))
        )
        if self.since:
            # The monthly partitions to read (core/partitions.py): a run is recorded after its
            # result arrived, and a result's time is at most AHEAD_ALLOWED past its arrival.
            rows = rows.filter(recorded_at__gte=self.since - AHEAD_ALLOWED)
        return rows.filter(name=name) if name else rows

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (for links and exports from a page)."""
        query = {
            "line": self.line.code if self.line else "",
            "step": self.step,
            "station": self.station.code if self.station else "",
            "equipment": self.equipment,
            "batch": self.batch.code if self.batch else "",
            "design": self.design.code if self.design else "",
            "recipe_version": str(self.recipe_version or ""),
            "lot": self.lot.code if self.lot else "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in query.items() if v}

    def cell_steps(self) -> QuerySet[CellStep]:
        """The cells at a step whose first result there is selected (batches.CellStep, one row
        per cell and kind of step, carrying its first run's columns), not ordered."""
        return CellStep.objects.filter(**self._filters(CELL_STEP_PATHS, as_stations=("line",)))

    def _station_ids(self, **lookups) -> list[int]:
        """The ids of the stations with these fields, read once per selection (a page of
        charts filters many times)."""
        key = tuple(lookups.items())
        if key not in self._stations_read:
            rows = Station.objects.filter(**lookups).order_by().values_list("id", flat=True)
            self._stations_read[key] = list(rows)
        return self._stations_read[key]

    @cached_property
    def _stations_read(self) -> dict[tuple, list[int]]:
        return {}

    def _run_filters(self, prefix: str) -> dict:
        return self._filters({name: prefix + path for name, path in RUN_PATHS.items()})

    def _filters(self, paths: Mapping[str, str], *, as_stations: tuple[str, ...] = ()) -> dict:
        """The lookups of the selection on the relation `paths` maps the filters into. The
        filters named in `as_stations` ("line", "step") become the ids of the stations they
        select, read now: a relation as big as CellStep or Measurement is then estimated from
        its per-station statistics and read through its indexes, where a join to the stations
        leaves PostgreSQL guessing. The same rows either way: a station's kind is its results'
        step (stations take the route's steps of their own kind), and the stations on the line
        are those on it now."""
        filters: dict = {}
        for name in ("line", "step", "station", "equipment", "batch", "design", "recipe_version"):
            if value := getattr(self, name):
                filters[paths[name]] = value
        of_stations = {STATION_FIELDS[n]: getattr(self, n) for n in as_stations if getattr(self, n)}
        if of_stations:
            stations = self._station_ids(**of_stations)
            if stations:  # none keeps the joins, which find nothing
                for name in as_stations:
                    filters.pop(paths[name], None)
                filters[paths["station"] + "__in"] = stations
        if self.lot:
            filters[paths["lot"] + "__in"] = Consumption.objects.filter(
                lot__in=lot_and_descendant_ids([self.lot.pk])
            ).values("cell")
        if self.since:
            filters[paths["at"] + "__gte"] = self.since
        if self.until:
            filters[paths["at"] + "__lt"] = self.until
        return filters


# Where each filter looks on a run, on a measurement (which copies its run's cell, station and
# time), and on a cell's first run at a step as batches.CellStep copies it: one list each, the
# same keys (a test holds them to it), so they cannot drift.
# The line goes through the station on all three: a station moved to another line takes its past
# results with it, as it always has.
RUN_PATHS: dict[str, str] = {
    "line": "station__line",
    "step": "step__station_kind",
    "station": "station",
    "equipment": "equipment_ref",
    "batch": "cell__batch",
    "design": "cell__batch__design",
    "recipe_version": "recipe_version__version",
    "lot": "cell",
    "at": "finished_at",
}
MEASUREMENT_PATHS: dict[str, str] = {
    "line": "station__line",
    "step": "station__kind",
    "station": "station",
    "equipment": "run__equipment_ref",
    "batch": "cell__batch",
    "design": "cell__batch__design",
    "recipe_version": "run__recipe_version__version",
    "lot": "cell",
    "at": "finished_at",
}
CELL_STEP_PATHS: dict[str, str] = {
    "line": "station__line",
    "step": "step",
    "station": "station",
    "equipment": "equipment_ref",
    "batch": "batch",
    "design": "design",
    "recipe_version": "recipe_version__version",
    "lot": "cell",
    "at": "first_at",
}
# The filters that are a station's own fields, as `_filters` reads them off the stations.
STATION_FIELDS: dict[str, str] = {"line": "line", "step": "kind"}
