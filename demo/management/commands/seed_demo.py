"""Seed both lines with master data and batches at different stages; running it again changes nothing."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from batches.models import Batch, DesignMaterial, Hold, MaterialLot, ProcessRun
from batches.services import StepResult, create_batch, record_step
from demo.cycler_files import formation_file
from demo.demo_data import readings_for
from demo.passport_master_data import seed_passport_master_data
from formation import storage as cycler_storage
from lines.calendar import shift_occurrences
from lines.equipment import record_calibration
from lines.models import (
    CellDesign,
    Equipment,
    Line,
    Recipe,
    RecipeVersion,
    Route,
    RouteStep,
    Station,
    Zone,
)
from lines.performance import calendar_spec, ideal_cycle_times, set_ideal_cycle_time
from lines.services import set_station_state, supersede_recipe
from quality.grading import create_grading_rule_set, release_grading_rule_set
from stations import intake, worker
from stations.models import InboxEntry
from stations.schema import StationResultIn

SEEDER = "seed_demo"

LINES = [
    {
        "code": "proto",
        "name": "Prototype line",
        "process_cost_per_cell": Decimal("0.95"),
        "site": "Prototype production facility, Nissan Research Center, Kanagawa Prefecture",
        "stations": [
            ("PR-STK-1", "stacking"),
            ("PR-PRS-1", "pressing"),
            ("PR-FRM-1", "formation"),
            ("PR-AGE-1", "aging"),
        ],
        "routes": {
            "std": ("Stack, press, form", ["stacking", "pressing", "formation"]),
            "std-aging": (
                "Stack, press, form, age",
                ["stacking", "pressing", "formation", "aging"],
            ),
        },
    },
    {
        "code": "yokohama",
        "name": "Yokohama pilot line",
        "process_cost_per_cell": Decimal("1.60"),
        "site": "Yokohama Plant, Kanagawa Prefecture",
        "stations": [
            ("YK-STK-1", "stacking"),
            ("YK-STK-2", "stacking"),
            ("YK-PRS-1", "pressing"),
            ("YK-FRM-1", "formation"),
            ("YK-AGE-1", "aging"),
            ("YK-GRD-1", "grading"),
        ],
        "routes": {
            "pilot": (
                "Pilot route with aging and grading",
                ["stacking", "pressing", "formation", "aging", "grading"],
            )
        },
    },
]

# Dew point at or below -40 degC, H2S alarm at 1 ppm (DOMAIN.md, "Dry room").
DRY_ROOM_LIMITS = {
    "dew_point_c": {"max": -40},
    "temperature_c": {"min": 18, "max": 26},
    "h2s_ppm": {"max": 1},
}

# The performance pages' demo: channels registered per fixture, ideal cycle times per step, and
# states of the last hours (hours ago, state, reason), alternating between stations.
DEMO_CHANNELS = 4
IDEAL_CYCLE_S = {"stacking": 40, "pressing": 90, "formation": 300, "aging": 20, "grading": 15}
DEMO_STATES = [  # (hours into the shift, state, reason)
    [
        (0, "running", "shift start"),
        (2, "down", "jam"),
        (2.4, "running", ""),
        (5, "maintenance", "changeover"),
        (5.5, "running", ""),
        (9, "idle", "shift end"),
    ],
    [
        (0.25, "running", "shift start"),
        (1, "down", "material_wait"),
        (1.8, "running", ""),
        (6, "down", "no_operator"),
        (6.3, "running", ""),
        (9, "idle", "shift end"),
    ],
]

EQUIPMENT = {
    "PR-STK-1": [("PR-STACKER-1", "stacker", 1)],
    "PR-PRS-1": [("PR-CIP-1", "press_vessel", 1)],
    "PR-FRM-1": [("PR-FIX-1", "formation_fixture", 16)],
    "YK-STK-1": [("YK-STACKER-1", "stacker", 1)],
    "YK-STK-2": [("YK-STACKER-2", "stacker", 1)],
    "YK-PRS-1": [("YK-WIP-1", "press_vessel", 1), ("YK-WIP-2", "press_vessel", 1)],
    "YK-FRM-1": [("YK-FIX-1", "formation_fixture", 64), ("YK-FIX-2", "formation_fixture", 64)],
}

DESIGNS = [
    {
        "code": "SSB-5AH-P1",
        "name": "Prototype 5 Ah laminated sulfide cell",
        "nominal_capacity_ah": 5.0,
        "nominal_voltage_v": 3.65,
        "layer_count": 20,
        "target_mass_g": 60.0,
        "length_mm": 100.0,
        "width_mm": 70.0,
        "thickness_mm": 5.5,
        "voltage_min_v": 2.5,
        "voltage_max_v": 4.25,
        "line": "proto",
    },
    {
        "code": "SSB-20AH-Y1",
        "name": "Pilot 20 Ah laminated sulfide cell",
        "nominal_capacity_ah": 20.0,
        "nominal_voltage_v": 3.7,
        "layer_count": 40,
        "target_mass_g": 190.0,
        "length_mm": 160.0,
        "width_mm": 110.0,
        "thickness_mm": 9.0,
        "voltage_min_v": 2.5,
        "voltage_max_v": 4.25,
        "line": "yokohama",
    },
]

# Bill of materials per cell, by design: role -> (quantity, unit).
BOM = {
    "SSB-5AH-P1": {
        "cathode": ("0.140", "m2"),
        "electrolyte": ("0.150", "m2"),
        "anode": ("0.140", "m2"),
        "current_collector": ("0.290", "m2"),
        "pouch": ("1", "pcs"),
    },
    "SSB-20AH-Y1": {
        "cathode": ("0.700", "m2"),
        "electrolyte": ("0.740", "m2"),
        "anode": ("0.700", "m2"),
        "current_collector": ("1.420", "m2"),
        "pouch": ("1", "pcs"),
    },
}

# Lots: code, role, material, supplier, quantity, unit, unit cost (USD per unit), parent roll.
LOTS = [
    (
        "CAT-ROLL-2611-A",
        "cathode",
        "NCM811 + Li6PS5Cl composite cathode roll",
        "in-house coating",
        "400",
        "m2",
        "5.80",
        None,
    ),
    (
        "CAT-2611-A-01",
        "cathode",
        "Composite cathode sheet",
        "in-house slitting",
        "200",
        "m2",
        "5.80",
        "CAT-ROLL-2611-A",
    ),
    (
        "CAT-2611-A-02",
        "cathode",
        "Composite cathode sheet",
        "in-house slitting",
        "200",
        "m2",
        "5.80",
        "CAT-ROLL-2611-A",
    ),
    (
        "SE-2611-01",
        "electrolyte",
        "Li6PS5Cl solid-electrolyte sheet, 30 um",
        "in-house",
        "600",
        "m2",
        "2.10",
        None,
    ),
    (
        "SE-2611-02",
        "electrolyte",
        "Li6PS5Cl solid-electrolyte sheet, 30 um",
        "in-house",
        "600",
        "m2",
        "2.10",
        None,
    ),
    ("AN-2611-01", "anode", "Ag-C anode-free layer on SUS", "in-house", "800", "m2", "1.20", None),
    (
        "CC-2611-01",
        "current_collector",
        "Al/Cu current collector foil",
        "UACJ",
        "2000",
        "m2",
        "0.35",
        None,
    ),
    ("POUCH-2611-01", "pouch", "Al-laminate pouch 113 um", "DNP", "5000", "pcs", "0.18", None),
]

RECIPES = {
    "stacking": {
        "layer_count": {"unit": "", "target": None, "min": None, "max": None},  # set per design
        "max_offset_x_mm": {"unit": "mm", "target": 0.0, "min": 0.0, "max": 0.3},
        "max_offset_y_mm": {"unit": "mm", "target": 0.0, "min": 0.0, "max": 0.3},
        "rotation_deg": {"unit": "deg", "target": 0.0, "min": 0.0, "max": 0.2},
        "stack_height_mm": {"unit": "mm", "target": None, "min": None, "max": None},
        "stack_mass_g": {"unit": "g", "target": None, "min": None, "max": None},
        "insulation_resistance_mohm": {"unit": "MOhm", "target": None, "min": 100.0, "max": None},
    },
    "pressing": {
        "peak_pressure_mpa": {"unit": "MPa", "target": 500.0, "min": 375.0, "max": 700.0},
        "dwell_s": {"unit": "s", "target": 300.0, "min": 60.0, "max": None},
        "temperature_c": {"unit": "degC", "target": 60.0, "min": 25.0, "max": 150.0},
        "thickness_before_um": {"unit": "um", "target": None, "min": None, "max": None},
        "thickness_after_um": {"unit": "um", "target": None, "min": None, "max": None},
        "relative_density_pct": {"unit": "%", "target": None, "min": 90.0, "max": None},
    },
    "formation": {
        "first_charge_capacity_ah": {"unit": "Ah", "target": None, "min": None, "max": None},
        "first_discharge_capacity_ah": {"unit": "Ah", "target": None, "min": None, "max": None},
        "initial_coulombic_efficiency": {"unit": "", "target": 0.86, "min": 0.80, "max": 0.95},
        "discharge_energy_wh": {"unit": "Wh", "target": None, "min": None, "max": None},
        "average_discharge_voltage_v": {"unit": "V", "target": None, "min": None, "max": None},
        "max_temperature_c": {
            "unit": "degC",
            "target": None,
            "min": None,
            "max": 60.0,
            "required": False,
        },
        # A cycler file does not carry the fixture pressure: judged when the station sends it.
        "fixture_pressure_mpa": {
            "unit": "MPa",
            "target": 5.0,
            "min": 1.0,
            "max": 10.0,
            "required": False,
        },
        "later_coulombic_efficiency": {
            "unit": "",
            "target": None,
            "min": 0.97,
            "max": None,
            "required": False,
        },
        "max_gap_intervals": {
            "unit": "",
            "target": None,
            "min": None,
            "max": 120.0,
            "required": False,
        },
        "soft_short_events": {"unit": "", "target": 0.0, "min": 0.0, "max": 0.0, "required": False},
        "min_voltage_v": {"unit": "V", "target": None, "min": None, "max": None},
        "max_voltage_v": {"unit": "V", "target": None, "min": None, "max": None},
    },
    "aging": {
        "ocv1_v": {"unit": "V", "target": None, "min": None, "max": None},
        "ocv2_v": {"unit": "V", "target": None, "min": None, "max": None},
        "ocv_interval_days": {"unit": "d", "target": None, "min": 3.0, "max": None},
        "k_mv_per_day": {"unit": "mV/d", "target": None, "min": None, "max": 0.5},
        "acir_mohm": {"unit": "mOhm", "target": None, "min": None, "max": 4.0},
    },
    "grading": {
        "dcir_10s_mohm": {"unit": "mOhm", "target": None, "min": None, "max": 6.0},
        # The rated capacity test: a CC discharge at the stated C-rate and temperature, out of the
        # formation fixture. Its energy is what Wh/kg and Wh/L are quoted from (batches.energy).
        "rated_discharge_capacity_ah": {
            "unit": "Ah",
            "target": None,
            "min": None,
            "max": None,
            "required": False,
        },
        "rated_discharge_energy_wh": {
            "unit": "Wh",
            "target": None,
            "min": None,
            "max": None,
            "required": False,
        },
        "rated_discharge_c_rate": {
            "unit": "C",
            "target": 0.33,
            "min": 0.3,
            "max": 0.36,
            "required": False,
        },
        "rated_discharge_temperature_c": {
            "unit": "degC",
            "target": 25.0,
            "min": 23.0,
            "max": 27.0,
            "required": False,
        },
        # The finished cell weighed and gauged (pouch and tabs included), for Wh/kg and Wh/L.
        "cell_mass_g": {"unit": "g", "target": None, "min": None, "max": None, "required": False},
        "cell_thickness_mm": {
            "unit": "mm",
            "target": None,
            "min": None,
            "max": None,
            "required": False,
        },
    },
}

# Seeded batches: code, line, route, design, cells, steps each cell gets through, upset rate, days ago.
BATCHES = [
    # Finished batches, every cell through its route: what the cost trend is drawn over.
    ("PROTO-SEED-00", "proto", "std", "SSB-5AH-P1", 12, 3, 0.0, 9),
    ("YOK-SEED-00", "yokohama", "pilot", "SSB-20AH-Y1", 20, 5, 0.0, 10),
    ("PROTO-SEED-01", "proto", "std", "SSB-5AH-P1", 24, 3, 0.10, 5),
    ("PROTO-SEED-02", "proto", "std-aging", "SSB-5AH-P1", 16, 2, 0.10, 2),
    ("PROTO-SEED-03", "proto", "std", "SSB-5AH-P1", 12, 0, 0.0, 0),
    ("YOK-SEED-01", "yokohama", "pilot", "SSB-20AH-Y1", 40, 5, 0.05, 6),
    ("YOK-SEED-02", "yokohama", "pilot", "SSB-20AH-Y1", 40, 3, 0.05, 3),
    ("YOK-SEED-03", "yokohama", "pilot", "SSB-20AH-Y1", 30, 1, 0.05, 1),
]

PERSONAS = [
    ("olivia", "operator", "Olivia", "Operator"),
    ("lena", "line_engineer", "Lena", "Line engineer"),
    ("quentin", "quality_engineer", "Quentin", "Quality engineer"),
    ("ada", "admin", "Ada", "Admin"),
]
DEMO_PASSWORD = "pilot-line-demo"


# Grading rule sets per design, best grade first: parameter -> inclusive limits.
GRADING = {
    "SSB-5AH-P1": {
        "A": {
            "first_discharge_capacity_ah": {"min": 4.4},
            "initial_coulombic_efficiency": {"min": 0.85},
        },
        "B": {
            "first_discharge_capacity_ah": {"min": 4.2},
            "initial_coulombic_efficiency": {"min": 0.82},
        },
        "C": {
            "first_discharge_capacity_ah": {"min": 4.0},
            "initial_coulombic_efficiency": {"min": 0.80},
        },
    },
    "SSB-20AH-Y1": {
        "A": {
            "first_discharge_capacity_ah": {"min": 17.6},
            "initial_coulombic_efficiency": {"min": 0.85},
            "k_mv_per_day": {"max": 0.2},
            "acir_mohm": {"max": 2.6},
        },
        "B": {
            "first_discharge_capacity_ah": {"min": 16.8},
            "initial_coulombic_efficiency": {"min": 0.82},
            "k_mv_per_day": {"max": 0.35},
            "acir_mohm": {"max": 3.0},
        },
        "C": {
            "first_discharge_capacity_ah": {"min": 16.0},
            "initial_coulombic_efficiency": {"min": 0.80},
            "k_mv_per_day": {"max": 0.5},
            "acir_mohm": {"max": 4.0},
        },
    },
}


class Command(BaseCommand):
    help = (
        "Seed both lines with stations, routes, recipes, a design, lots and batches (idempotent)."
    )

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            self.seed_master_data()
        for spec in BATCHES:
            with transaction.atomic():
                self.seed_batch(*spec)
        self.seed_resent_results()
        with transaction.atomic():
            self.seed_performance()
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))

    def seed_resent_results(self, batch_code: str = "YOK-SEED-01", cells: int = 3) -> None:
        """A stacker restarted and sent a few results again under new event ids: through the
        station intake and the workers' service, which reject them (the cells have moved on), so
        the list of results not applied has something to show. A second run sends the same
        event ids: duplicates, nothing new."""
        runs = (
            ProcessRun.objects.filter(cell__batch__code=batch_code, step__station_kind="stacking")
            .select_related("cell", "station")
            .prefetch_related("measurements")
            .order_by("cell__position")[:cells]
        )
        for run in runs:
            resent = StationResultIn(
                event_id=f"{run.event_id}-resent",
                cell=run.cell.serial,
                occurred_at=run.finished_at,
                measurements={m.name: m.value for m in run.measurements.all()},
                equipment=run.equipment_ref,
            )
            with transaction.atomic():
                accepted = intake.accept_results(run.station, [resent])
                worker.process_entries(accepted.entry_ids)

    def seed_performance(self) -> None:
        """What the OEE and equipment pages show: the fixtures' first channels registered, the
        vessels and fixtures calibrated (one due soon), ideal cycle times of the released
        versions, and each station's states over the last hours with reasons. Idempotent: only
        what is missing is added."""
        engineer = User.objects.get(username="lena")
        for fixture in Equipment.objects.filter(kind=Equipment.Kind.FORMATION_FIXTURE):
            for n in range(1, min(fixture.channels, DEMO_CHANNELS) + 1):
                Equipment.objects.get_or_create(
                    code=f"{fixture.code}-CH{n:02d}",
                    defaults={
                        "station": fixture.station,
                        "kind": Equipment.Kind.FIXTURE_CHANNEL,
                        "parent": fixture,
                    },
                )
        calibrated = Equipment.objects.filter(
            kind__in=[Equipment.Kind.PRESS_VESSEL, Equipment.Kind.FORMATION_FIXTURE],
            calibrations__isnull=True,
        ).order_by("code")
        for i, item in enumerate(calibrated):
            due = timezone.localdate() + timedelta(days=12 if i == 0 else 120)
            record_calibration(item, due=due, by=engineer, note="Demo calibration certificate")
        ideals = ideal_cycle_times(RecipeVersion.objects.values_list("pk", flat=True))
        for version in RecipeVersion.objects.exclude(
            status=RecipeVersion.Status.DRAFT
        ).select_related("recipe__line"):
            if version.pk not in ideals:
                seconds = IDEAL_CYCLE_S.get(version.recipe.station_kind, 60)
                set_ideal_cycle_time(version, ideal_cycle_s=seconds, by=engineer)
        # The states fall in the last shift worked (the line's calendar) that began long enough
        # ago for all of them to have happened, so the figures have planned time to count them
        # whatever the hour the demo is seeded.
        now = timezone.now()
        for i, station in enumerate(Station.objects.select_related("line").order_by("code")):
            if station.state_changes.filter(occurred_at__gte=now - timedelta(days=7)).exists():
                continue
            states = DEMO_STATES[i % len(DEMO_STATES)]
            span = timedelta(hours=max(hours_in for hours_in, _, _ in states))
            shifts = shift_occurrences(calendar_spec(station.line), now - timedelta(days=6), now)
            begun = [shift.start for shift in shifts if shift.start <= now - span]
            start = begun[-1] if begun else now - span
            for hours_in, state, reason in states:
                at = start + timedelta(hours=hours_in)
                if at < now:
                    set_station_state(
                        station,
                        state=state,
                        reason=reason,
                        by=f"station:{station.code}",
                        occurred_at=at,
                    )

    def seed_master_data(self) -> None:
        for spec in LINES:
            line, _ = Line.objects.get_or_create(
                code=spec["code"],
                defaults={
                    "name": spec["name"],
                    "site": spec["site"],
                    "process_cost_per_cell": spec["process_cost_per_cell"],
                },
            )
            for code, kind in spec["stations"]:
                station, _ = Station.objects.get_or_create(
                    code=code,
                    defaults={"line": line, "kind": kind, "name": f"{kind.title()} {code[-1]}"},
                )
                for eq_code, eq_kind, channels in EQUIPMENT.get(code, []):
                    Equipment.objects.get_or_create(
                        code=eq_code,
                        defaults={"station": station, "kind": eq_kind, "channels": channels},
                    )
            for route_code, (name, kinds) in spec["routes"].items():
                route, created = Route.objects.get_or_create(
                    line=line, code=route_code, defaults={"name": name}
                )
                if created:
                    RouteStep.objects.bulk_create(
                        RouteStep(route=route, position=i, station_kind=kind)
                        for i, kind in enumerate(kinds, 1)
                    )
            self.seed_dry_room(line)
        for spec in DESIGNS:
            fields = {k: v for k, v in spec.items() if k not in ("code", "line")}
            design, _ = CellDesign.objects.get_or_create(code=spec["code"], defaults=fields)
            for role, (quantity, unit) in BOM[design.code].items():
                DesignMaterial.objects.get_or_create(
                    design=design,
                    role=role,
                    defaults={"quantity_per_cell": Decimal(quantity), "unit": unit},
                )
            self.seed_recipes(Line.objects.get(code=spec["line"]), design)
            if not design.grading_rule_sets.exists():
                release_grading_rule_set(
                    create_grading_rule_set(
                        design,
                        by=SEEDER,
                        grades=GRADING[design.code],
                        note="Initial grading (engineering defaults)",
                    ),
                    by=SEEDER,
                )
        seed_passport_master_data(by=SEEDER)
        received = timezone.now() - timedelta(days=14)
        for code, role, material, supplier, quantity, unit, cost, parent in LOTS:
            MaterialLot.objects.get_or_create(
                code=code,
                defaults={
                    "role": role,
                    "material": material,
                    "supplier": supplier,
                    "supplier_lot": f"S-{code}",
                    "quantity": Decimal(quantity),
                    "unit": unit,
                    "unit_cost": Decimal(cost),
                    "received_at": received,
                    "parent": MaterialLot.objects.filter(code=parent).first(),
                },
            )
        for username, group_name, first, last in PERSONAS:
            group, _ = Group.objects.get_or_create(name=group_name)
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "is_staff": group_name == "admin",
                    "is_superuser": group_name == "admin",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            user.groups.add(group)

    def seed_dry_room(self, line: Line) -> None:
        """The line's dry room (API.md's demo data): its stacking stations, sulfide-line limits."""
        zone, _ = Zone.objects.get_or_create(
            code=f"{line.code}-dry-room",
            defaults={
                "line": line,
                "name": f"{line.name} stacking dry room",
                # No exposure limit: the simulators feed the same lots for days.
                "limits": DRY_ROOM_LIMITS,
            },
        )
        zone.stations.add(*line.stations.filter(kind="stacking"))

    def seed_recipes(self, line: Line, design: CellDesign) -> None:
        for kind, parameters in RECIPES.items():
            if not line.stations.filter(kind=kind).exists():
                continue
            recipe, created = Recipe.objects.get_or_create(
                line=line,
                station_kind=kind,
                design=None,  # the line's default; a design's own recipes are not the seed's
                defaults={"name": f"{line.name} {kind} ({design.code})"},
            )
            if not created:
                continue
            parameters = {name: dict(spec) for name, spec in parameters.items()}
            if kind == "stacking":
                exact = float(design.layer_count)
                parameters["layer_count"].update(target=exact, min=exact, max=exact)
            if kind == "formation":
                # Capacity at most 1.1 x nominal; voltage within the window +-50 mV.
                nominal = design.nominal_capacity_ah
                parameters["first_charge_capacity_ah"].update(max=round(1.1 * nominal, 4))
                parameters["first_discharge_capacity_ah"].update(
                    target=round(0.9 * nominal, 4),
                    min=round(0.8 * nominal, 4),
                    max=round(1.1 * nominal, 4),
                )
                parameters["min_voltage_v"].update(min=round(design.voltage_min_v - 0.05, 3))
                parameters["max_voltage_v"].update(max=round(design.voltage_max_v + 0.05, 3))
            supersede_recipe(
                recipe,
                by=SEEDER,
                parameters=parameters,
                note="Initial release (engineering defaults)",
            )
            if kind == "pressing":
                # A second version, so the history shows what changed: longer minimum dwell.
                parameters["dwell_s"].update(min=120.0)
                supersede_recipe(
                    recipe,
                    by=SEEDER,
                    parameters=parameters,
                    note="Minimum dwell at peak raised from 60 s to 120 s after density study",
                )

    def seed_batch(
        self,
        code: str,
        line_code: str,
        route_code: str,
        design_code: str,
        quantity: int,
        steps_done: int,
        upset_rate: float,
        days_ago: int,
    ) -> None:
        if Batch.objects.filter(code=code).exists():
            return
        line = Line.objects.get(code=line_code)
        design = CellDesign.objects.get(code=design_code)
        route = Route.objects.get(line=line, code=route_code)
        lots = {
            "cathode": "CAT-2611-A-01",
            "electrolyte": "SE-2611-01",
            "anode": "AN-2611-01",
            "current_collector": "CC-2611-01",
            "pouch": "POUCH-2611-01",
        }
        batch = create_batch(
            line=line,
            design=design,
            route=route,
            quantity=quantity,
            by=SEEDER,
            material_lots=lots,
            code=code,
        )
        rng = random.Random(code)
        stations = {kind: list(line.stations.filter(kind=kind)) for kind in route.step_kinds()}
        start = timezone.now() - timedelta(days=days_ago, hours=2)
        for position, kind in enumerate(route.step_kinds()[:steps_done]):
            for index, cell in enumerate(batch.cells.order_by("position")):
                cell.refresh_from_db()
                if (
                    cell.next_step is None
                    or cell.next_step.station_kind != kind
                    or cell.holds.filter(status=Hold.Status.OPEN).exists()
                ):
                    continue
                station = stations[kind][index % len(stations[kind])]
                at = min(start + timedelta(hours=position * 6, minutes=index * 3), timezone.now())
                if kind == "formation":
                    entry = self.upload_formation_file(cell, station, rng, upset_rate, at)
                    # The workers' own service reads, judges and applies it (hold rules too).
                    worker.process_entries([entry.pk])
                    continue
                data = readings_for(kind, design, rng, upset_rate=upset_rate)
                equipment_ref = (
                    f"{station.code}-C{days_ago:02d}{index // 8 + 1:02d}"
                    if kind == "pressing"
                    else ""
                )
                record_step(
                    cell,
                    station,
                    StepResult(
                        occurred_at=at,
                        measurements=data["measurements"],
                        defects=data["defects"],
                        curves=data.get("curves", {}),
                        equipment_ref=equipment_ref,
                        material_lots=lots if kind == "stacking" else {},
                        event_id=f"seed-{cell.serial}-{kind}",
                    ),
                    by=f"station:{station.code}",
                )

    def upload_formation_file(
        self, cell, station: Station, rng: random.Random, upset_rate: float, at
    ) -> InboxEntry:
        """A formation channel's raw file for the cell, stored and accepted as the upload endpoint
        does (in the cycler storage by its sha256, then the intake), so the cell page shows its
        voltage-vs-capacity curve and offers the file."""
        content, _ = formation_file(cell.batch.design, rng, upset_rate=upset_rate)
        sha256 = hashlib.sha256(content).hexdigest()
        name = cycler_storage.stored_name(station.code, sha256)
        cycler_storage.store_bytes(name, content)
        event_id = f"seed-{cell.serial}-formation"
        intake.accept_cycler_file(
            station,
            event_id=event_id,
            cell_serial=cell.serial,
            file_format="csv",
            name=name,
            sha256=sha256,
            size=len(content),
            original_name=f"{cell.serial}-formation.csv",
        )
        entry = InboxEntry.objects.get(station=station, event_id=event_id)
        # The seed lays its history out over past days: the run is dated when the file was
        # written, not when the seed ran (an upload carries no time of its own).
        InboxEntry.objects.filter(pk=entry.pk).update(occurred_at=at)
        return entry
