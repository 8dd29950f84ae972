"""Every state change of batches, cells, lots and holds goes through these services.

Each is atomic, takes its actor as `by` (a user, or a label such as "station:ST-01" or a rule),
checks the transition declared beside the status, and appends an audit event in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from batches.models import (
    Batch,
    BatchMaterial,
    Cell,
    CellDesign,
    Consumption,
    Curve,
    DesignMaterial,
    Hold,
    HoldRule,
    MaterialLot,
    Measurement,
    ProcessRun,
)
from lines.models import Line, RecipeVersion, Route, RouteStep, Station
from lines.services import active_recipe_version
from mes.errors import DomainError, check_transition

# ---------------------------------------------------------------- batches


@transaction.atomic
def create_batch(
    *,
    line: Line,
    design: CellDesign,
    route: Route,
    quantity: int,
    by: Any,
    material_lots: Mapping[str, str] | None = None,
    code: str | None = None,
) -> Batch:
    """Plan a batch and create its cells with serials `<batch code>-<position>`."""
    if route.line_id != line.pk:
        raise DomainError(
            "invalid", f"Route {route.code} is not a route of line {line.code}.", status=400
        )
    if not 1 <= quantity <= 10000:
        raise DomainError("invalid", "A batch has 1 to 10000 cells.", status=400)
    first_step = route.steps.order_by("position").first()
    if first_step is None:
        raise DomainError("invalid", f"Route {route.code} has no steps.", status=400)
    lots = _lots_by_role(material_lots or {})
    if code is None:
        code = _next_batch_code(line)
    elif Batch.objects.filter(code=code).exists():
        raise DomainError("duplicate", f"Batch {code} exists already.")
    batch = Batch.objects.create(
        code=code,
        line=line,
        design=design,
        route=route,
        planned_quantity=quantity,
        created_by=None if isinstance(by, str) else by,
    )
    BatchMaterial.objects.bulk_create(
        BatchMaterial(batch=batch, role=role, lot=lot) for role, lot in lots.items()
    )
    Cell.objects.bulk_create(
        Cell(serial=f"{code}-{n:04d}", batch=batch, position=n, next_step=first_step)
        for n in range(1, quantity + 1)
    )
    record_event(
        actor=by,
        verb="batch_created",
        subject_type="batch",
        subject=batch.code,
        data={
            "quantity": quantity,
            "design": design.code,
            "route": route.code,
            "material_lots": {role: lot.code for role, lot in lots.items()},
        },
    )
    return batch


def _next_batch_code(line: Line) -> str:
    # <LINE>-<YYMMDD>-<NN>; the unique constraint on code settles a race between two planners.
    prefix = f"{line.code.upper()}-{timezone.localdate():%y%m%d}-"
    taken = Batch.objects.filter(code__startswith=prefix).count()
    return f"{prefix}{taken + 1:02d}"


def _lots_by_role(material_lots: Mapping[str, str]) -> dict[str, MaterialLot]:
    codes = set(material_lots.values())
    found = {lot.code: lot for lot in MaterialLot.objects.filter(code__in=codes)}
    lots = {}
    for role, code in material_lots.items():
        lot = found.get(code)
        if lot is None:
            raise DomainError("unknown_lot", f"No material lot {code}.", status=400)
        if lot.role != role:
            raise DomainError(
                "wrong_lot_role", f"Lot {code} is {lot.role}, not {role}.", status=400
            )
        lots[role] = lot
    return lots


def _set_batch_status(batch: Batch, status: str, *, by: Any, reason: str = "") -> Batch:
    check_transition(Batch, batch.status, status)
    now = timezone.now()
    old, batch.status = batch.status, status
    if status == Batch.Status.IN_PROGRESS:
        batch.started_at = now
    if status in (Batch.Status.COMPLETED, Batch.Status.CANCELLED):
        batch.completed_at = now
    batch.save(update_fields=["status", "started_at", "completed_at"])
    record_event(
        actor=by,
        verb=f"batch_{status}",
        subject_type="batch",
        subject=batch.code,
        reason=reason,
        data={"from": old},
    )
    return batch


@transaction.atomic
def start_batch(batch: Batch, *, by: Any) -> Batch:
    return _set_batch_status(_locked_batch(batch), Batch.Status.IN_PROGRESS, by=by)


@transaction.atomic
def complete_batch(batch: Batch, *, by: Any) -> Batch:
    """Close a batch once every cell is completed or scrapped."""
    batch = _locked_batch(batch)
    unfinished = batch.cells.exclude(status__in=[Cell.Status.COMPLETED, Cell.Status.SCRAPPED])
    if unfinished.exists():
        raise DomainError(
            "cells_unfinished",
            f"Batch {batch.code} has {unfinished.count()} cells still on the route.",
        )
    return _set_batch_status(batch, Batch.Status.COMPLETED, by=by)


@transaction.atomic
def cancel_batch(batch: Batch, *, by: Any, reason: str) -> Batch:
    """Cancel a planned batch that never started; its cells are scrapped unmade."""
    batch = _locked_batch(batch)
    _set_batch_status(batch, Batch.Status.CANCELLED, by=by, reason=reason)
    batch.cells.update(status=Cell.Status.SCRAPPED, next_step=None)
    return batch


def _locked_batch(batch: Batch) -> Batch:
    return Batch.objects.select_for_update().get(pk=batch.pk)


# ---------------------------------------------------------------- cells


def check_track_in(cell: Cell, station: Station) -> RouteStep:
    """The interlock: the route step `cell` may do at `station` now, or the reason it may not."""
    if cell.status == Cell.Status.SCRAPPED:
        raise DomainError("scrapped", f"Cell {cell.serial} is scrapped.")
    route_steps = cell.batch.route.steps.all()
    if cell.batch.line_id != station.line_id or all(
        s.station_kind != station.kind for s in route_steps
    ):
        raise DomainError(
            "wrong_station", f"Cell {cell.serial}'s route has no step at station {station.code}."
        )
    if Hold.cells.through.objects.filter(cell=cell, hold__status=Hold.Status.OPEN).exists():
        raise DomainError("on_hold", f"Cell {cell.serial} is on hold.")
    if cell.next_step_id is None or cell.next_step.station_kind != station.kind:
        expected = cell.next_step.station_kind if cell.next_step_id else "none (route done)"
        raise DomainError(
            "wrong_step",
            f"Cell {cell.serial}'s next step is {expected}, not {station.kind}.",
        )
    return cell.next_step


@dataclass
class StepResult:
    """What a station reports for one cell at one step (already shape-validated)."""

    occurred_at: datetime
    measurements: Mapping[str, float] = field(default_factory=dict)
    verdict: str = ""
    equipment_ref: str = ""
    defects: Sequence[str] = ()
    curves: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    material_lots: Mapping[str, str] = field(default_factory=dict)
    event_id: str = ""
    started_at: datetime | None = None
    operator: str = ""


def judge(
    version: RecipeVersion, measurements: Mapping[str, float]
) -> tuple[list[Measurement], list[dict]]:
    """Measurements judged against a recipe version's inclusive limits, and the violations.

    A required parameter that is missing and a name the recipe does not know are violations too;
    the unknown value is still kept, so no reading is thrown away.
    """
    parameters = {p.name: p for p in version.parameters.all()}
    rows, violations = [], []
    for name, value in measurements.items():
        parameter = parameters.get(name)
        if parameter is None:
            rows.append(Measurement(name=name, value=value, in_spec=None))
            violations.append(
                {
                    "parameter": name,
                    "value": value,
                    "min": None,
                    "max": None,
                    "problem": "unknown_parameter",
                }
            )
            continue
        in_spec = parameter.in_spec(value)
        rows.append(
            Measurement(
                name=name,
                value=value,
                unit=parameter.unit,
                min=parameter.min,
                max=parameter.max,
                in_spec=in_spec,
            )
        )
        if in_spec is False:
            violations.append(
                {
                    "parameter": name,
                    "value": value,
                    "min": parameter.min,
                    "max": parameter.max,
                    "problem": "out_of_spec",
                }
            )
    for name, parameter in parameters.items():
        if parameter.required and name not in measurements:
            violations.append(
                {
                    "parameter": name,
                    "value": None,
                    "min": parameter.min,
                    "max": parameter.max,
                    "problem": "missing",
                }
            )
    return rows, violations


@transaction.atomic
def record_step(cell: Cell, station: Station, result: StepResult, *, by: Any) -> ProcessRun:
    """Apply one station result to one cell: the run, its measurements, curves and genealogy,
    the cell's move (on to its next step, or held where it failed) and the hold rules."""
    cell = (
        Cell.objects.select_for_update(of=("self",))
        .select_related("batch__route", "next_step")
        .get(pk=cell.pk)
    )
    step = check_track_in(cell, station)
    version = active_recipe_version(station)
    measurements, violations = judge(version, result.measurements)
    failed = bool(violations) or result.verdict == ProcessRun.Verdict.FAIL or bool(result.defects)
    run = ProcessRun.objects.create(
        cell=cell,
        step=step,
        station=station,
        recipe_version=version,
        equipment_ref=result.equipment_ref,
        operator=result.operator,
        started_at=result.started_at,
        finished_at=result.occurred_at,
        verdict=ProcessRun.Verdict.FAIL if failed else ProcessRun.Verdict.PASS,
        equipment_verdict=result.verdict,
        defects=list(result.defects),
        violations=violations,
        event_id=result.event_id,
    )
    for measurement in measurements:
        measurement.run = run
    Measurement.objects.bulk_create(measurements)
    Curve.objects.bulk_create(
        Curve(
            run=run,
            name=name,
            unit=curve.get("unit", ""),
            # Most curves run over time; a formation curve may run over capacity instead.
            x_name=curve.get("x_name", "t_s"),
            x_unit=curve.get("x_unit", "s"),
            x=list(curve["t_s"]),
            y=list(curve["values"]),
        )
        for name, curve in result.curves.items()
    )
    _consume_lots(cell, run, result.material_lots, by=by)
    batch = cell.batch
    if batch.status == Batch.Status.PLANNED:
        # Re-read under the lock: another cell's result may have started the batch meanwhile.
        batch = _locked_batch(batch)
        if batch.status == Batch.Status.PLANNED:
            _set_batch_status(batch, Batch.Status.IN_PROGRESS, by=by)
    record_event(
        actor=by,
        verb="step_recorded",
        subject_type="cell",
        subject=cell.serial,
        data={
            "step": step.station_kind,
            "station": station.code,
            "verdict": run.verdict,
            "run": run.pk,
            "event_id": result.event_id,
            "recipe_version": version.version,
        },
    )
    if not failed:
        _advance(cell, step, at=result.occurred_at, by=by)
    elif cell.status == Cell.Status.PLANNED:
        # Started, though it stays at the step it failed until quality dispositions it.
        cell.status = Cell.Status.IN_PROCESS
        cell.save(update_fields=["status"])
    from batches.rules import apply_hold_rules  # rules read what this service just wrote

    apply_hold_rules(run)
    return run


def _consume_lots(
    cell: Cell, run: ProcessRun, material_lots: Mapping[str, str], *, by: Any
) -> None:
    if not material_lots:
        return
    lots = _lots_by_role(material_lots)
    bom = {
        m.role: m.quantity_per_cell
        for m in DesignMaterial.objects.filter(design_id=cell.batch.design_id)
    }
    Consumption.objects.bulk_create(
        [
            Consumption(
                cell=cell, lot=lot, role=role, quantity=bom.get(role, Decimal("1")), run=run
            )
            for role, lot in lots.items()
        ],
        ignore_conflicts=True,
    )
    # A cell that consumed a held lot joins that lot's hold (forward genealogy).
    for hold in Hold.objects.filter(
        scope=Hold.Scope.LOT, status=Hold.Status.OPEN, lot__in=lots.values()
    ):
        hold.cells.add(cell)
        record_event(
            actor=by,
            verb="cell_joined_hold",
            subject_type="cell",
            subject=cell.serial,
            data={"hold": hold.pk, "lot": hold.target},
        )


def _route_steps(cell: Cell) -> list[RouteStep]:
    return list(cell.batch.route.steps.all())


def _advance(cell: Cell, done: RouteStep, *, at: datetime, by: Any) -> Cell:
    """Move a cell past `done` to the route's next step, or complete it."""
    following = [s for s in _route_steps(cell) if s.position > done.position]
    status = Cell.Status.IN_PROCESS if following else Cell.Status.COMPLETED
    check_transition(Cell, cell.status, status)
    cell.status = status
    cell.next_step = following[0] if following else None
    cell.completed_at = None if following else at
    cell.save(update_fields=["status", "next_step", "completed_at"])
    if not following:
        from batches.grading import grade_completed_cell  # grading reads the runs just written

        grade_completed_cell(cell, by=by)
        _complete_batch_if_done(cell.batch, by=by)
    return cell


def _complete_batch_if_done(batch: Batch, *, by: Any) -> None:
    unfinished = batch.cells.exclude(status__in=[Cell.Status.COMPLETED, Cell.Status.SCRAPPED])
    batch = _locked_batch(batch)
    if batch.status == Batch.Status.IN_PROGRESS and not unfinished.exists():
        _set_batch_status(batch, Batch.Status.COMPLETED, by=by)


@transaction.atomic
def scrap_cell(cell: Cell, *, by: Any, reason: str) -> Cell:
    cell = Cell.objects.select_for_update(of=("self",)).select_related("batch").get(pk=cell.pk)
    require_reason(reason)
    check_transition(Cell, cell.status, Cell.Status.SCRAPPED)
    old = cell.status
    cell.status, cell.next_step = Cell.Status.SCRAPPED, None
    cell.save(update_fields=["status", "next_step"])
    record_event(
        actor=by,
        verb="cell_scrapped",
        subject_type="cell",
        subject=cell.serial,
        reason=reason,
        data={"from": old},
    )
    _complete_batch_if_done(cell.batch, by=by)
    return cell


@transaction.atomic
def rework_cell(cell: Cell, *, step: RouteStep, by: Any, reason: str) -> Cell:
    """Send a cell back to re-run `step`: a step it has done already, never one ahead of it."""
    cell = (
        Cell.objects.select_for_update(of=("self",))
        .select_related("batch__route", "next_step")
        .get(pk=cell.pk)
    )
    require_reason(reason)
    if step.route_id != cell.batch.route_id:
        raise DomainError(
            "wrong_step", f"Step {step.station_kind} is not on cell {cell.serial}'s route."
        )
    if not cell.runs.filter(step=step).exists():
        raise DomainError(
            "invalid_transition",
            f"Cell {cell.serial} has not done {step.station_kind}: nothing to rework.",
        )
    check_transition(Cell, cell.status, Cell.Status.IN_PROCESS)
    old_step = cell.next_step.station_kind if cell.next_step_id else None
    cell.status, cell.next_step, cell.completed_at = Cell.Status.IN_PROCESS, step, None
    cell.save(update_fields=["status", "next_step", "completed_at"])
    record_event(
        actor=by,
        verb="cell_rework",
        subject_type="cell",
        subject=cell.serial,
        reason=reason,
        data={"step": step.station_kind, "was_next": old_step},
    )
    return cell


def require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise DomainError("reason_required", "A reason is required.", status=400)


# ---------------------------------------------------------------- holds


@transaction.atomic
def open_hold(
    *,
    scope: str,
    target: str,
    cells: Iterable[Cell],
    reason: str,
    by: Any,
    rule: HoldRule | None = None,
    batch: Batch | None = None,
    lot: MaterialLot | None = None,
    station: Station | None = None,
    run: ProcessRun | None = None,
) -> Hold:
    """Open a hold over the cells of its scope (resolved now, so the hold records whom it stopped)."""
    require_reason(reason)
    hold = Hold.objects.create(
        scope=scope,
        target=target,
        reason=reason,
        rule=rule,
        opened_by=None if rule is not None or isinstance(by, str) else by,
        batch=batch,
        lot=lot,
        station=station,
        run=run,
    )
    cell_ids = [c.pk for c in cells if c.status != Cell.Status.SCRAPPED]
    Hold.cells.through.objects.bulk_create(
        Hold.cells.through(hold_id=hold.pk, cell_id=cell_id) for cell_id in cell_ids
    )
    record_event(
        actor=by,
        verb="hold_opened",
        subject_type=scope,
        subject=target,
        reason=reason,
        data={"hold": hold.pk, "cells": len(cell_ids), "rule": rule.label if rule else None},
    )
    return hold


def hold_cell(
    cell: Cell, *, by: Any, reason: str, rule: HoldRule | None = None, run: ProcessRun | None = None
) -> Hold:
    return open_hold(
        scope=Hold.Scope.CELL,
        target=cell.serial,
        cells=[cell],
        reason=reason,
        by=by,
        rule=rule,
        batch=cell.batch,
        run=run,
    )


def hold_batch(batch: Batch, *, by: Any, reason: str, rule: HoldRule | None = None) -> Hold:
    """Hold every cell of a batch; a finished batch can be held too (a recall)."""
    return open_hold(
        scope=Hold.Scope.BATCH,
        target=batch.code,
        cells=batch.cells.all(),
        reason=reason,
        by=by,
        rule=rule,
        batch=batch,
    )


def hold_lot(lot: MaterialLot, *, by: Any, reason: str, rule: HoldRule | None = None) -> Hold:
    """Hold a lot and every cell that consumed it (forward genealogy); later consumers join."""
    cells = Cell.objects.filter(consumptions__lot=lot).distinct()
    return open_hold(
        scope=Hold.Scope.LOT, target=lot.code, cells=cells, reason=reason, by=by, rule=rule, lot=lot
    )


def hold_press_cycle(
    station: Station, equipment_ref: str, *, by: Any, reason: str, rule: HoldRule | None = None
) -> Hold:
    """Hold every cell pressed in one press cycle (vessel load): they saw the same cycle."""
    cells = Cell.objects.filter(runs__station=station, runs__equipment_ref=equipment_ref).distinct()
    return open_hold(
        scope=Hold.Scope.PRESS_CYCLE,
        target=f"{station.code}:{equipment_ref}",
        cells=cells,
        reason=reason,
        by=by,
        rule=rule,
        station=station,
    )


@transaction.atomic
def release_hold(
    hold: Hold, *, by: Any, disposition: str, reason: str, rework_step: RouteStep | None = None
) -> Hold:
    """Close a hold with quality's disposition for its cells.

    release: the cells may go on; a cell held for its own failed run is accepted as it is
             (deviation) and moves past that step.
    rework:  each cell re-runs a step: `rework_step`, else the failed run's step, else pressing
             for a press cycle, else the last step the cell ran.
    scrap:   every cell of the hold is scrapped.
    """
    hold = Hold.objects.select_for_update(of=("self",)).select_related("run__step").get(pk=hold.pk)
    require_reason(reason)
    if disposition not in Hold.Disposition.values:
        raise DomainError("invalid", f"Unknown disposition {disposition!r}.", status=400)
    check_transition(Hold, hold.status, Hold.Status.CLOSED)
    cells = list(
        hold.cells.select_for_update(of=("self",))
        .select_related("batch__route", "next_step")
        .exclude(status=Cell.Status.SCRAPPED)
    )
    for cell in cells:
        if disposition == Hold.Disposition.SCRAP:
            scrap_cell(cell, by=by, reason=f"hold {hold.pk}: {reason}")
        elif disposition == Hold.Disposition.REWORK:
            step = rework_step or _default_rework_step(hold, cell)
            if step is not None:
                rework_cell(cell, step=step, by=by, reason=f"hold {hold.pk}: {reason}")
        elif hold.run_id and hold.run.cell_id == cell.pk and cell.next_step_id == hold.run.step_id:
            record_event(
                actor=by,
                verb="deviation_accepted",
                subject_type="cell",
                subject=cell.serial,
                reason=reason,
                data={"hold": hold.pk, "run": hold.run_id},
            )
            _advance(cell, hold.run.step, at=timezone.now(), by=by)
    hold.status = Hold.Status.CLOSED
    hold.closed_at = timezone.now()
    hold.closed_by = None if isinstance(by, str) else by
    hold.disposition = disposition
    hold.disposition_reason = reason
    hold.save(
        update_fields=["status", "closed_at", "closed_by", "disposition", "disposition_reason"]
    )
    record_event(
        actor=by,
        verb="hold_closed",
        subject_type=hold.scope,
        subject=hold.target,
        reason=reason,
        data={"hold": hold.pk, "disposition": disposition, "cells": len(cells)},
    )
    return hold


def _default_rework_step(hold: Hold, cell: Cell) -> RouteStep | None:
    if hold.run_id:
        return hold.run.step
    steps = _route_steps(cell)
    if hold.scope == Hold.Scope.PRESS_CYCLE:
        return next((s for s in steps if s.station_kind == "pressing"), None)
    last = cell.runs.order_by("-finished_at", "-id").select_related("step").first()
    return last.step if last else None
