"""Engineers' API (v1) bodies, per shared/design/API.md: input serializers only validate, the
views call the services; output serializers read what the selectors loaded (no queries here)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batches import energy
from batches.models import Batch, Cell, Consumption, Hold, MaterialLot, MaterialRole, ProcessRun
from batches.selectors import cell_state
from core.renderers import JSONText
from lines.models import Line, Station, StationKind

CELL_STATES = [*Cell.Status.values, "on_hold"]


# ---------------------------------------------------------------- lines


class LineStationSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=StationKind.choices)
    state = serializers.ChoiceField(choices=Station.State.values)


class RouteSerializer(serializers.Serializer):
    code = serializers.CharField()
    steps = serializers.SerializerMethodField(help_text="Station kinds in route order")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_steps(self, route: Any) -> list[str]:
        return [step.station_kind for step in route.steps.all()]


class ZoneSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    stations = serializers.ListField(
        source="station_codes", child=serializers.CharField(), help_text="Station codes"
    )
    limits = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text='Per quantity, e.g. {"dew_point_c": {"max": -40}}',
    )
    tolerated_s = serializers.IntegerField(help_text="How long a limit may be crossed (s)")


class LineSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    site = serializers.CharField()
    stations = LineStationSerializer(many=True)
    routes = RouteSerializer(many=True)
    zones = ZoneSerializer(many=True, help_text="Its dry-room zones")
    designs = serializers.SerializerMethodField(help_text="Codes of the designs the line makes")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_designs(self, line: Line) -> list[str]:
        return self.context.get("designs", {}).get(line.pk, [])


# ---------------------------------------------------------------- batches


class BatchSerializer(serializers.Serializer):
    code = serializers.CharField()
    line = serializers.CharField(source="line.code")
    design = serializers.CharField(source="design.code")
    route = serializers.CharField(source="route.code")
    status = serializers.ChoiceField(choices=Batch.Status.choices)
    quantity = serializers.IntegerField(source="planned_quantity")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class BatchCellSerializer(serializers.Serializer):
    """The schema of selectors.batch_cells_for_api's rows (the view returns them as they are)."""

    serial = serializers.CharField()
    status = serializers.ChoiceField(
        choices=CELL_STATES, help_text="on_hold while an open hold covers it"
    )
    step = serializers.CharField(allow_null=True, help_text="The next route step; null when done")


class BatchDetailSerializer(BatchSerializer):
    cells = BatchCellSerializer(many=True)


class BatchCreatedSerializer(BatchSerializer):
    cells = serializers.ListField(
        child=serializers.CharField(), source="api_serials", help_text="Serials, in order"
    )


class BatchCreateSerializer(serializers.Serializer):
    """The request body of POST /api/v1/batches; codes are resolved by the view."""

    line = serializers.SlugField(min_length=1, max_length=30)
    design = serializers.SlugField(min_length=1, max_length=40)
    route = serializers.SlugField(min_length=1, max_length=40)
    quantity = serializers.IntegerField(min_value=1, max_value=10000)
    material_lots = serializers.DictField(
        child=serializers.SlugField(min_length=1, max_length=50),
        required=False,
        help_text="ROLE: LOT-CODE, lots planned for the batch",
    )

    def validate_material_lots(self, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MaterialRole.values))
        if unknown:
            raise serializers.ValidationError(f"Unknown material roles: {', '.join(unknown)}.")
        return value


# ---------------------------------------------------------------- holds


class HoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=Hold.Scope.choices)
    target = serializers.CharField()
    reason = serializers.CharField()
    status = serializers.ChoiceField(choices=Hold.Status.choices)
    opened_by = serializers.CharField(
        source="opened_by_label", help_text="A username, or rule:<code>@v<version>"
    )
    opened_at = serializers.DateTimeField()
    disposition = serializers.ChoiceField(
        choices=Hold.Disposition.choices, allow_blank=True, help_text="Empty while open"
    )
    disposition_reason = serializers.CharField()
    found_at = serializers.CharField(
        help_text="The step whose failure opened the hold (a station kind), empty if opened by hand"
    )
    closed_by = serializers.SerializerMethodField()
    closed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_closed_by(self, hold: Hold) -> str | None:
        return hold.closed_by.get_username() if hold.closed_by_id else None


class HoldRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=1, max_length=1000, help_text="Why; required")


class ReleaseRequestSerializer(serializers.Serializer):
    disposition = serializers.ChoiceField(choices=Hold.Disposition.choices)
    reason = serializers.CharField(min_length=1, max_length=1000, help_text="Why; required")
    rework_step = serializers.ChoiceField(
        choices=StationKind.choices,
        required=False,
        help_text="Rework: the step the cells that have done it go back to (the others go on as "
        "they are). Default: the step whose failure opened the hold (`found_at`), else each "
        "cell's last step.",
    )


# ---------------------------------------------------------------- cells


class MeasurementSerializer(serializers.Serializer):
    value = serializers.FloatField()
    unit = serializers.CharField()
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    in_spec = serializers.BooleanField(allow_null=True, help_text="null: recorded, not judged")


class RunSerializer(serializers.Serializer):
    step = serializers.CharField(source="step.station_kind")
    station = serializers.CharField(source="station.code")
    recipe_version = serializers.IntegerField(source="recipe_version.version")
    verdict = serializers.ChoiceField(choices=ProcessRun.Verdict.values)
    equipment = serializers.CharField(source="equipment_ref")
    operator = serializers.CharField()
    finished_at = serializers.DateTimeField()
    measurements = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(child=MeasurementSerializer()))
    def get_measurements(self, run: ProcessRun) -> dict[str, dict]:
        return {m.name: MeasurementSerializer(m).data for m in run.measurements.all()}


class LotRefSerializer(serializers.Serializer):
    code = serializers.CharField()
    role = serializers.ChoiceField(choices=MaterialRole.choices)
    parent = serializers.CharField(
        source="parent_code", allow_null=True, help_text="The lot it was cut from"
    )


class CellEnergySerializer(serializers.Serializer):
    wh = serializers.FloatField(source="energy_wh", help_text="Discharge energy, Wh")
    wh_per_kg = serializers.FloatField()
    wh_per_l = serializers.FloatField()
    source = serializers.ChoiceField(
        choices=energy.ENERGY_SOURCES,
        help_text="rated: the rated discharge test at grading; formation: the formation "
        "discharge (no rated test yet; slow, warm, under fixture pressure)",
    )
    c_rate = serializers.FloatField(allow_null=True, help_text="The rated test's; null: formation")
    temperature_c = serializers.FloatField(
        allow_null=True, help_text="The rated test's; null: formation"
    )
    mass_g = serializers.FloatField()
    mass_source = serializers.ChoiceField(
        choices=energy.SIZE_SOURCES,
        help_text="measured at grading, or the design's target mass when not measured",
    )
    thickness_mm = serializers.FloatField()
    thickness_source = serializers.ChoiceField(
        choices=energy.SIZE_SOURCES,
        help_text="measured at grading, or the design's thickness when not measured",
    )
    formation_wh = serializers.FloatField(
        allow_null=True, help_text="The formation discharge's energy, Wh"
    )


class CellDetailSerializer(serializers.Serializer):
    serial = serializers.CharField()
    batch = serializers.CharField(source="batch.code")
    status = serializers.SerializerMethodField(help_text="on_hold while an open hold covers it")
    step = serializers.SerializerMethodField(help_text="The next route step; null when done")
    grade = serializers.CharField()
    genealogy = serializers.SerializerMethodField(help_text="ROLE: LOT-CODE")
    lots = LotRefSerializer(
        many=True,
        source="api_lots",
        help_text="Every lot the cell consumed, then the lots those were cut from",
    )
    runs = RunSerializer(many=True, source="api_runs")
    energy = CellEnergySerializer(
        source="api_energy",
        allow_null=True,
        help_text="Energy and energy density; null before the cell has a discharge energy",
    )

    @extend_schema_field(serializers.ChoiceField(choices=CELL_STATES))
    def get_status(self, cell: Cell) -> str:
        return cell_state(cell)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_step(self, cell: Cell) -> str | None:
        return cell.next_step.station_kind if cell.next_step_id else None

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_genealogy(self, cell: Cell) -> dict[str, str]:
        consumptions: list[Consumption] = cell.api_genealogy
        # One lot per role in practice; should a role have two, the last consumed names it.
        return {c.role: c.lot.code for c in consumptions}


# ---------------------------------------------------------------- lots


class LotSerializer(serializers.Serializer):
    code = serializers.CharField()
    role = serializers.ChoiceField(choices=MaterialRole.choices)
    status = serializers.ChoiceField(choices=MaterialLot.Status.choices)
    material = serializers.CharField()
    supplier = serializers.CharField()
    supplier_lot = serializers.CharField()
    parent = serializers.SerializerMethodField(help_text="The roll this sheet lot was cut from")
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4)
    unit = serializers.CharField()
    received_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True, help_text="Not to be used after")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_parent(self, lot: MaterialLot) -> str | None:
        return lot.parent.code if lot.parent_id else None


class SerialsField(serializers.ListField):
    """A list of serials read from the database as a JSON array already (core.renderers.JSONText):
    passed through as it is, since a lot's 100,000 consumers through a field each would take most
    of a second."""

    child = serializers.CharField()

    def to_representation(self, data: JSONText) -> JSONText:
        return data


class LotDetailSerializer(LotSerializer):
    children = serializers.ListField(
        child=serializers.CharField(), source="api_children", help_text="Lots cut from it"
    )
    cells = SerialsField(
        source="api_cells",
        help_text="Serials of every cell that consumed the lot or a lot cut from it, at any "
        "depth, in the order the cells were made",
    )
