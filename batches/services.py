"""Every state change of batches, cells, lots and holds goes through these services.

Each is atomic, takes its actor as `by` (a user, or a label such as "station:ST-01" or a rule),
checks the transition declared beside the status, and appends an audit event in the same
transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record_event, record_events
from batches import hooks
from batches.models import (
    Batch,
    BatchMaterial,
    Cell,
    Consumption,
    Curve,
    DesignMaterial,
    Hold,
    HoldRule,
    MaterialLot,
    MaterialRole,
    Measurement,
    ProcessRun,
)
from batches.recipe_overrides import overrides_of
from batches.selectors import lot_and_ancestor_ids, lot_and_descendant_ids
from core.bulk import copy_objects, copy_rows, update_rows
from core.errors import DomainError, check_transition, in_words, require_reason
from core.locks import lock_names
from lines.equipment import named_item, registry
from lines.judging import Reading, judge
from lines.models import (
    CellDesign,
    Equipment,
    Line,
    Recipe,
    RecipeVersion,
    Route,
    RouteStep,
    Station,
    StationKind,
)
from lines.selectors import applicable_recipe, version_in_force_at, versions_out_of_draft

logger = logging.getLogger(__name__)

# The task that closes a hold of many cells (batches.tasks), sent by its name.
CLOSE_HOLD = "batches.tasks.close_hold"

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
            "invalid",
            _("Route %(route)s is not a route of line %(line)s.")
            % {"route": route.code, "line": line.code},
            status=400,
        )
    if not 1 <= quantity <= 10000:
        raise DomainError("invalid", _("A batch has 1 to 10000 cells."), status=400)
    first_step = route.steps.order_by("position").first()
    if first_step is None:
        raise DomainError(
            "invalid", _("Route %(route)s has no steps.") % {"route": route.code}, status=400
        )
    lots = _lots_by_role(material_lots or {})
    batch = Batch(
        line=line,
        design=design,
        route=route,
        planned_quantity=quantity,
        created_by=None if isinstance(by, str) else by,
    )
    # Two planners on one line may take the same next code at once: the unique constraint
    # refuses the second, which takes the one after (a code asked for by name is refused).
    for _attempt in range(BATCH_CODE_ATTEMPTS):
        batch.code = code or _next_batch_code(line)
        try:
            with transaction.atomic():
                batch.save(force_insert=True)
            break
        except IntegrityError:
            # PostgreSQL reports a clash only once the other batch is committed: it is visible.
            if not Batch.objects.filter(code=batch.code).exists():
                raise  # refused for another reason
            if code is not None:
                raise DomainError(
                    "duplicate", _("Batch %(code)s exists already.") % {"code": code}
                ) from None
    else:
        raise DomainError(
            "duplicate", _("No free batch code on line %(line)s; try again.") % {"line": line.code}
        )
    code = batch.code
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


BATCH_CODE_ATTEMPTS = 5


def _next_batch_code(line: Line) -> str:
    """<LINE>-<YYMMDD>-<NN>: the day's next number on the line, after the highest taken."""
    prefix = f"{line.code.upper()}-{timezone.localdate():%y%m%d}-"
    suffixes = (
        taken.removeprefix(prefix)
        for taken in Batch.objects.filter(code__startswith=prefix).values_list("code", flat=True)
    )
    numbers = [int(suffix) for suffix in suffixes if suffix.isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1:02d}"


def _lots_by_role(
    material_lots: Mapping[str, str], found: Mapping[str, MaterialLot] | None = None
) -> dict[str, MaterialLot]:
    """The lots named by role, checked to exist and to be of that role; `found` may hold them
    already (by code)."""
    if found is None:
        codes = set(material_lots.values())
        found = {lot.code: lot for lot in MaterialLot.objects.filter(code__in=codes)}
    lots = {}
    for role, code in material_lots.items():
        lot = found.get(code)
        if lot is None:
            raise DomainError(
                "unknown_lot", _("No material lot %(code)s.") % {"code": code}, status=400
            )
        if lot.role != role:
            raise DomainError(
                "wrong_lot_role",
                _("Lot %(code)s is %(lot_role)s, not %(role)s.")
                % {
                    "code": code,
                    "lot_role": in_words(MaterialRole, lot.role),
                    "role": in_words(MaterialRole, role),
                },
                status=400,
            )
        lots[role] = lot
    return lots


def _set_batch_status(
    batch: Batch, status: str, *, by: Any, reason: str = "", data: dict | None = None
) -> Batch:
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
        data={"from": old, **(data or {})},
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
            _("Batch %(batch)s has %(count)s cells still on the route.")
            % {"batch": batch.code, "count": unfinished.count()},
        )
    return _set_batch_status(batch, Batch.Status.COMPLETED, by=by)


@transaction.atomic
def cancel_batch(batch: Batch, *, by: Any, reason: str) -> Batch:
    """Cancel a planned batch that never started; its cells are scrapped unmade."""
    batch = _locked_batch(batch)
    serials = list(batch.cells.order_by("position").values_list("serial", flat=True))
    _set_batch_status(
        batch,
        Batch.Status.CANCELLED,
        by=by,
        reason=reason,
        data={"cells": len(serials), "serials": serials},
    )
    batch.cells.update(status=Cell.Status.SCRAPPED, next_step=None)
    record_events(
        [
            {
                "actor": by,
                "verb": "cell_scrapped",
                "subject_type": "cell",
                "subject": serial,
                "reason": reason,
                "data": {"from": Cell.Status.PLANNED, "batch_cancelled": batch.code},
            }
            for serial in serials
        ]
    )
    return batch


@transaction.atomic
def set_lot_status(lot: MaterialLot, status: str, *, by: Any, reason: str) -> MaterialLot:
    """Move a lot through incoming inspection and use: released, quarantined, rejected or used
    up. Only a released lot may be consumed; a cell that consumes another is held."""
    require_reason(reason)
    lot = MaterialLot.objects.select_for_update().get(pk=lot.pk)
    if status not in MaterialLot.Status.values:
        raise DomainError(
            "invalid", _("Unknown lot status %(status)s.") % {"status": repr(status)}, status=400
        )
    check_transition(MaterialLot, lot.status, status)
    old, lot.status = lot.status, status
    lot.save(update_fields=["status"])
    record_event(
        actor=by,
        verb="lot_status_changed",
        subject_type="lot",
        subject=lot.code,
        reason=reason,
        data={"from": old, "to": status},
    )
    return lot


def _locked_batch(batch: Batch) -> Batch:
    return Batch.objects.select_for_update().get(pk=batch.pk)


# ---------------------------------------------------------------- cells


class StepContext:
    """What applying station results reads besides the results themselves: route steps, the
    recipe versions that judge them, the cells' open holds and those of lots and press cycles,
    bills of materials, lots, and what the hooks read once for the whole chunk (the hold rules in
    force).

    Read once for a chunk of results rather than once per result. Holds are read again after
    anything that may have opened one (StepContext.refresh_holds). The cells get their batches
    and next steps from here: cells of one batch share one Batch instance, so a batch started by
    one result is seen started by the next.
    """

    def __init__(self, cells: Iterable[Cell]):
        self.cells = {cell.pk: cell for cell in cells}
        batches = Batch.objects.in_bulk({cell.batch_id for cell in self.cells.values()})
        self._route_steps: dict[int, list[RouteStep]] = {b.route_id: [] for b in batches.values()}
        for step in RouteStep.objects.filter(route_id__in=self._route_steps).order_by("position"):
            self._route_steps[step.route_id].append(step)
        steps = {step.pk: step for steps in self._route_steps.values() for step in steps}
        for cell in self.cells.values():
            cell.batch = batches[cell.batch_id]
            cell.next_step = steps.get(cell.next_step_id)
        self._recipes: dict[tuple, tuple[Recipe | None, list[RecipeVersion]]] = {}
        self._boms: dict[int, dict[str, Decimal]] = {}
        self._lots: dict[str, MaterialLot] = {}
        self._read_once: dict[str, Any] = {}
        self._registry: list[Equipment] | None = None
        self.refresh_holds()

    def equipment(self, station: Station, result: StepResult) -> Equipment | None:
        """The registered item a result names (the registry read on first use: most results
        name none)."""
        if not (result.equipment_ref or result.fixture_ref or result.channel_ref):
            return None
        if self._registry is None:
            self._registry = registry()
        return named_item(
            self._registry,
            station,
            equipment=result.equipment_ref,
            fixture=result.fixture_ref,
            channel=result.channel_ref,
        )

    def refresh_holds(self) -> None:
        self.held = set(
            Hold.cells.through.objects.filter(
                cell_id__any=self.cells, hold__status=Hold.Status.OPEN
            ).values_list("cell_id", flat=True)
        )
        self._lot_holds: dict[int, list[Hold]] | None = None
        self._press_cycle_holds: dict[str, list[Hold]] | None = None
        self._ancestors: dict[int, list[int]] = {}

    def lot_holds(self, lot: MaterialLot) -> list[Hold]:
        """The open holds of a lot and of the lots it was cut from: a roll's hold stops its
        sheets too (read on first use: most results consume no lot)."""
        if self._lot_holds is None:
            self._lot_holds = {}
            for hold in Hold.objects.filter(scope=Hold.Scope.LOT, status=Hold.Status.OPEN):
                self._lot_holds.setdefault(hold.lot_id, []).append(hold)
        if not self._lot_holds:
            return []
        if lot.pk not in self._ancestors:
            self._ancestors[lot.pk] = lot_and_ancestor_ids([lot.pk])
        return [h for pk in self._ancestors[lot.pk] for h in self._lot_holds.get(pk, [])]

    def press_cycle_holds(self, station: Station, equipment_ref: str) -> list[Hold]:
        """The open holds of a press cycle (read on first use, after the caller has locked the
        cycles it applies: see record_steps)."""
        if self._press_cycle_holds is None:
            self._press_cycle_holds = {}
            for hold in Hold.objects.filter(scope=Hold.Scope.PRESS_CYCLE, status=Hold.Status.OPEN):
                self._press_cycle_holds.setdefault(hold.target, []).append(hold)
        return self._press_cycle_holds.get(press_cycle_code(station, equipment_ref), [])

    def route_steps(self, route_id: int) -> list[RouteStep]:
        """The steps of a route of the cells' batches, in order."""
        return self._route_steps[route_id]

    def recipe_version(self, cell: Cell, station: Station, result: StepResult) -> RecipeVersion:
        """The version a result is judged by: the one it names (as the station was served it),
        else the one in force for the cell's design at the time of the result."""
        key = (station.line_id, station.kind, cell.batch.design_id)
        if key not in self._recipes:
            recipe = applicable_recipe(*key)
            self._recipes[key] = (recipe, versions_out_of_draft(recipe) if recipe else [])
        recipe, versions = self._recipes[key]
        override = self._override(cell, recipe)
        if override is not None and result.recipe_version in (None, override.version):
            return override  # an experiment arm's setpoints, as track-in served them
        if not versions:
            raise DomainError(
                "no_recipe",
                _("No released %(step)s recipe for design %(design)s at station %(station)s.")
                % {"step": station.kind, "design": cell.batch.design.code, "station": station.code},
            )
        if result.recipe_version is None:
            return version_in_force_at(versions, result.occurred_at)
        named = next((v for v in versions if v.version == result.recipe_version), None)
        if named is None:
            served = ", ".join(f"v{v.version}" for v in versions)
            raise DomainError(
                "unknown_recipe_version",
                _(
                    "Station %(station)s was never served version %(version)s of %(recipe)s "
                    "for design %(design)s (released: %(served)s)."
                )
                % {
                    "station": station.code,
                    "version": result.recipe_version,
                    "recipe": recipe.name,
                    "design": cell.batch.design.code,
                    "served": served,
                },
            )
        return named

    def _override(self, cell: Cell, recipe: Recipe | None) -> RecipeVersion | None:
        """The arm's version the cell is served for `recipe`, read for all the chunk's cells on
        first use."""
        if recipe is None:
            return None
        overrides = self.read_once("recipe_overrides", lambda: overrides_of(self.cells))
        return overrides.get((cell.pk, recipe.pk))

    def bom(self, design_id: int) -> dict[str, Decimal]:
        if design_id not in self._boms:
            self._boms[design_id] = {
                m.role: m.quantity_per_cell
                for m in DesignMaterial.objects.filter(design_id=design_id)
            }
        return self._boms[design_id]

    def lots(self, material_lots: Mapping[str, str]) -> dict[str, MaterialLot]:
        missing = set(material_lots.values()) - set(self._lots)
        if missing:
            self._lots.update(
                (lot.code, lot) for lot in MaterialLot.objects.filter(code__in=missing)
            )
        return _lots_by_role(material_lots, self._lots)

    def read_once(self, key: str, read: Callable[[], Any]) -> Any:
        """What `read` returns, read on first use for the whole chunk (e.g. the hold rules in
        force, for the hooks that fire them)."""
        if key not in self._read_once:
            self._read_once[key] = read()
        return self._read_once[key]


def check_track_in(cell: Cell, station: Station, context: StepContext | None = None) -> RouteStep:
    """The interlock: the route step `cell` may do at `station` now, or the reason it may not."""
    context = context or StepContext([cell])
    if cell.status == Cell.Status.SCRAPPED:
        raise DomainError("scrapped", _("Cell %(serial)s is scrapped.") % {"serial": cell.serial})
    route_steps = context.route_steps(cell.batch.route_id)
    if cell.batch.line_id != station.line_id or all(
        s.station_kind != station.kind for s in route_steps
    ):
        raise DomainError(
            "wrong_station",
            _("Cell %(serial)s's route has no step at station %(station)s.")
            % {"serial": cell.serial, "station": station.code},
        )
    if cell.pk in context.held:
        raise DomainError("on_hold", _("Cell %(serial)s is on hold.") % {"serial": cell.serial})
    if cell.next_step_id is None or cell.next_step.station_kind != station.kind:
        expected = cell.next_step.station_kind if cell.next_step_id else "none (route done)"
        raise DomainError(
            "wrong_step",
            _("Cell %(serial)s's next step is %(expected)s, not %(step)s.")
            % {"serial": cell.serial, "expected": expected, "step": station.kind},
        )
    return cell.next_step


def check_lots_to_load(material_lots: Mapping[str, str], *, at: datetime) -> dict[str, MaterialLot]:
    """The lots a station says it will load, by role, checked before it loads them: known, of
    that role, usable (released, not expired) and not held, nor cut from a held lot."""
    lots = _lots_by_role(material_lots)
    for lot in lots.values():
        if why := lot.unusable_reason(at):
            raise DomainError("lot_unusable", _("Do not load it: %(why)s.") % {"why": why})
    for lot in lots.values():
        ancestry = lot_and_ancestor_ids([lot.pk])
        hold = Hold.objects.filter(
            scope=Hold.Scope.LOT, status=Hold.Status.OPEN, lot_id__in=ancestry
        ).first()
        if hold is not None:
            raise DomainError(
                "lot_on_hold",
                (
                    _("Do not load it: lot %(lot)s is on hold (%(reason)s).")
                    if hold.lot_id == lot.pk
                    else _(
                        "Do not load it: lot %(lot)s is on hold, "
                        "cut from held lot %(held)s (%(reason)s)."
                    )
                )
                % {"lot": lot.code, "held": hold.target, "reason": hold.reason},
            )
    return lots


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
    recipe_version: int | None = None  # the version the equipment ran, as it was served
    fixture_ref: str = ""  # the fixture and channel a formation result names, as sent
    channel_ref: str = ""


@dataclass
class StepInput:
    """One result to apply: to which cell (locked by the caller), from which station, by whom."""

    cell: Cell
    station: Station
    result: StepResult
    by: Any


@transaction.atomic
def record_step(cell: Cell, station: Station, result: StepResult, *, by: Any) -> ProcessRun:
    """Apply one station result to one cell (see record_steps); raises what refused it."""
    cell = Cell.objects.select_for_update().get(pk=cell.pk)
    (outcome,) = record_steps([StepInput(cell, station, result, by)])
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def record_steps(
    inputs: Sequence[StepInput], context: StepContext | None = None
) -> list[ProcessRun | DomainError]:
    """Apply station results in order: for each, the run, its measurements, curves and genealogy,
    the cell's move (on to its next step, or held where it failed) and the hold rules.

    Each outcome is the run recorded, or the DomainError that refused the result, which then wrote
    nothing. Call inside a transaction with the cells locked (select_for_update); they are
    updated in place, so a later result for the same cell finds the earlier one applied. The rows
    of results that change nothing else are written together; a result that needs more (a failure
    for the hold rules, a held lot, a cell at the end of its route) is written at once and
    followed up before the next result is judged.
    """
    # Press cycles first, in order: a short's hold and a cycle-mate's result, applied by two
    # workers at once, queue up, so the mate is either in the cycle when the hold gathers its
    # cells or finds the hold open when its own result is applied.
    lock_names(
        press_cycle_code(item.station, item.result.equipment_ref)
        for item in inputs
        if item.station.kind == StationKind.PRESSING and item.result.equipment_ref
    )
    context = context or StepContext(item.cell for item in inputs)
    writes = _StepWrites()
    outcomes: list[ProcessRun | DomainError] = []
    for item in inputs:
        try:
            run, follow_ups = _apply_step(item, context, writes)
        except DomainError as error:
            outcomes.append(error)
            continue
        outcomes.append(run)
        if follow_ups:
            writes.flush()
            for follow_up in follow_ups:
                follow_up()
            context.refresh_holds()
    writes.flush()
    return outcomes


def _apply_step(
    item: StepInput, context: StepContext, writes: _StepWrites
) -> tuple[ProcessRun, list[Callable[[], Any]]]:
    """Judge one result and stage its rows; returns the run and what must follow once it is
    written. Refusals (DomainError) come before anything is staged or written."""
    cell, station, result, by = item.cell, item.station, item.result, item.by
    step = check_track_in(cell, station, context)
    version = context.recipe_version(cell, station, result)
    lots = context.lots(result.material_lots) if result.material_lots else {}
    readings, violations = judge(version, result.measurements)
    failed = bool(violations) or result.verdict == ProcessRun.Verdict.FAIL or bool(result.defects)
    run = ProcessRun(
        cell=cell,
        step=step,
        station=station,
        recipe_version=version,
        equipment_ref=result.equipment_ref,
        equipment=context.equipment(station, result),
        fixture_ref=result.fixture_ref,
        channel_ref=result.channel_ref,
        operator=result.operator,
        started_at=result.started_at,
        finished_at=result.occurred_at,
        verdict=ProcessRun.Verdict.FAIL if failed else ProcessRun.Verdict.PASS,
        equipment_verdict=result.verdict,
        defects=list(result.defects),
        violations=violations,
        event_id=result.event_id,
    )
    bom = context.bom(cell.batch.design_id) if lots else {}
    consumptions = [
        Consumption(cell=cell, lot=lot, role=role, quantity=bom.get(role, Decimal("1")), run=run)
        for role, lot in lots.items()
    ]
    curves = [
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
    ]
    finished = False
    if not failed:
        finished = _move_past(
            cell, step, context.route_steps(cell.batch.route_id), at=result.occurred_at
        )
    elif cell.status == Cell.Status.PLANNED:
        # Started, though it stays at the step it failed until quality dispositions it.
        cell.status = Cell.Status.IN_PROCESS
    # Nothing below refuses: from here the result is applied.
    _start_batch_on_first_result(cell.batch, by=by)
    writes.add(run, readings, curves, consumptions, by=by)
    writes.cells[cell.pk] = cell
    joined = [hold for lot in lots.values() for hold in context.lot_holds(lot)]
    if station.kind == StationKind.PRESSING and result.equipment_ref:
        joined += context.press_cycle_holds(station, result.equipment_ref)
    follow_ups: list[Callable[[], Any]] = [
        partial(_join_hold, hold, cell, by=by) for hold in {h.pk: h for h in joined}.values()
    ]
    if finished:
        follow_ups.append(partial(_finish_route, cell, by=by))
    follow_ups += hooks.after_step_follow_ups(hooks.StepApplied(run, lots, context))
    return run, follow_ups


class _StepWrites:
    """The rows of applied results, written together: a few statements for many results."""

    def __init__(self) -> None:
        self.staged: list[tuple[ProcessRun, list[Reading], list[Curve], list[Consumption], Any]]
        self.staged = []
        self.cells: dict[int, Cell] = {}

    def add(
        self,
        run: ProcessRun,
        readings: list[Reading],
        curves: list[Curve],
        consumptions: list[Consumption],
        *,
        by: Any,
    ) -> None:
        self.staged.append((run, readings, curves, consumptions, by))

    def flush(self) -> None:
        staged, cells = self.staged, list(self.cells.values())
        self.staged, self.cells = [], {}
        if staged:
            copy_objects([run for run, *_ in staged], with_ids=True)
            for run, _, curves, consumptions, _ in staged:
                for row in (*curves, *consumptions):
                    row.run = run
                # The partition key: the run's own time (set by copy_objects), so a run's rows
                # share one month.
                for curve in curves:
                    curve.recorded_at = run.recorded_at
            copy_rows(
                Measurement,
                ["run_id", "recorded_at", "cell_id", "station_id", "finished_at", *Reading._fields],
                (
                    (
                        run.pk,
                        run.recorded_at,
                        run.cell_id,
                        run.station_id,
                        run.finished_at,
                        *reading,
                    )
                    for run, readings, *_ in staged
                    for reading in readings
                ),
            )
            Curve.objects.bulk_create([c for _, _, cs, *_ in staged for c in cs])
            Consumption.objects.bulk_create(
                [c for *_, cs, _ in staged for c in cs], ignore_conflicts=True
            )
            record_events([_step_event(run, by) for run, *_, by in staged])
        if cells:
            update_rows(cells, ["status", "next_step", "completed_at"])


def _step_event(run: ProcessRun, by: Any) -> dict[str, Any]:
    return dict(
        actor=by,
        verb="step_recorded",
        subject_type="cell",
        subject=run.cell.serial,
        data={
            "step": run.step.station_kind,
            "station": run.station.code,
            "verdict": run.verdict,
            "run": run.pk,
            "event_id": run.event_id,
            "recipe_version": run.recipe_version.version,
        },
    )


def _start_batch_on_first_result(batch: Batch, *, by: Any) -> None:
    if batch.status != Batch.Status.PLANNED:
        return
    # Re-read under the lock: another cell's result may have started the batch meanwhile.
    locked = _locked_batch(batch)
    if locked.status == Batch.Status.PLANNED:
        _set_batch_status(locked, Batch.Status.IN_PROGRESS, by=by)
    batch.status = locked.status


def _join_hold(hold: Hold, cell: Cell, *, by: Any) -> None:
    """A cell joins an open hold whose scope it entered: it consumed a held lot (or a lot cut
    from one), or was pressed in a held press cycle."""
    hold.cells.add(cell)
    record_event(
        actor=by,
        verb="cell_joined_hold",
        subject_type="cell",
        subject=cell.serial,
        data={"hold": hold.pk, "scope": hold.scope, "target": hold.target},
    )


def _move_past(cell: Cell, done: RouteStep, route_steps: list[RouteStep], *, at: datetime) -> bool:
    """Move a cell (in memory) past `done` to the route's next step; True if that completes it."""
    following = [s for s in route_steps if s.position > done.position]
    status = Cell.Status.IN_PROCESS if following else Cell.Status.COMPLETED
    check_transition(Cell, cell.status, status)
    cell.status = status
    cell.next_step = following[0] if following else None
    cell.completed_at = None if following else at
    return not following


def _advance(cell: Cell, done: RouteStep, *, at: datetime, by: Any) -> Cell:
    """Move a cell past `done` to the route's next step, or complete it."""
    completed = _move_past(cell, done, _route_steps(cell), at=at)
    cell.save(update_fields=["status", "next_step", "completed_at"])
    if completed:
        _finish_route(cell, by=by)
    return cell


def _finish_route(cell: Cell, *, by: Any) -> None:
    hooks.route_completed(cell, by=by)
    _complete_batch_if_done(cell.batch, by=by)


def _route_steps(cell: Cell) -> list[RouteStep]:
    return list(cell.batch.route.steps.all())


def _complete_batch_if_done(batch: Batch, *, by: Any) -> None:
    unfinished = batch.cells.exclude(status__in=[Cell.Status.COMPLETED, Cell.Status.SCRAPPED])
    batch = _locked_batch(batch)
    if batch.status == Batch.Status.IN_PROGRESS and not unfinished.exists():
        _set_batch_status(batch, Batch.Status.COMPLETED, by=by)


@transaction.atomic
def scrap_cell(cell: Cell, *, by: Any, reason: str) -> Cell:
    cell = Cell.objects.select_for_update(of=("self",)).select_related("batch").get(pk=cell.pk)
    require_reason(reason)
    _scrap_cells([cell], by=by, reason=reason)
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
    _rework_cells([(cell, step)], by=by, reason=reason)
    return cell


def _scrap_cells(cells: Sequence[Cell], *, by: Any, reason: str) -> None:
    """Scrap cells the caller has locked, in a few statements whatever their number: one update,
    one COPY of their events (a hold over a 10,000-cell batch is scrapped in seconds)."""
    for cell in cells:
        check_transition(Cell, cell.status, Cell.Status.SCRAPPED)
    was = {cell.pk: cell.status for cell in cells}
    for cell in cells:
        cell.status, cell.next_step = Cell.Status.SCRAPPED, None
    update_rows(list(cells), ["status", "next_step"])
    record_events(
        [
            {
                "actor": by,
                "verb": "cell_scrapped",
                "subject_type": "cell",
                "subject": cell.serial,
                "reason": reason,
                "data": {"from": was[cell.pk]},
            }
            for cell in cells
        ]
    )
    for batch in {cell.batch_id: cell.batch for cell in cells}.values():
        _complete_batch_if_done(batch, by=by)


def _rework_cells(
    cells_and_steps: Sequence[tuple[Cell, RouteStep]], *, by: Any, reason: str
) -> None:
    """Send locked cells back each to a step it has done, in a few statements: all or none."""
    done = set(
        ProcessRun.objects.filter(cell_id__in=[cell.pk for cell, _ in cells_and_steps]).values_list(
            "cell_id", "step_id"
        )
    )
    for cell, step in cells_and_steps:
        if step.route_id != cell.batch.route_id:
            raise DomainError(
                "wrong_step",
                _("Step %(step)s is not on cell %(serial)s's route.")
                % {"step": in_words(StationKind, step.station_kind), "serial": cell.serial},
            )
        if (cell.pk, step.pk) not in done:
            raise DomainError(
                "invalid_transition",
                _("Cell %(serial)s has not done %(step)s: nothing to rework.")
                % {"serial": cell.serial, "step": in_words(StationKind, step.station_kind)},
            )
        check_transition(Cell, cell.status, Cell.Status.IN_PROCESS)
    was = {
        cell.pk: cell.next_step.station_kind if cell.next_step_id else None
        for cell, _ in cells_and_steps
    }
    for cell, step in cells_and_steps:
        cell.status, cell.next_step, cell.completed_at = Cell.Status.IN_PROCESS, step, None
    update_rows([cell for cell, _ in cells_and_steps], ["status", "next_step", "completed_at"])
    record_events(
        [
            {
                "actor": by,
                "verb": "cell_rework",
                "subject_type": "cell",
                "subject": cell.serial,
                "reason": reason,
                "data": {"step": step.station_kind, "was_next": was[cell.pk]},
            }
            for cell, step in cells_and_steps
        ]
    )


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
    found_at: str = "",
) -> Hold:
    """Open a hold over the cells of its scope (resolved now, so the hold records whom it stopped).
    `found_at` is the step whose failure opened it (a failed run's own step when not given)."""
    require_reason(reason)
    if not found_at and run is not None:
        found_at = run.step.station_kind
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
        found_at=found_at,
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


def hold_batch(
    batch: Batch, *, by: Any, reason: str, rule: HoldRule | None = None, found_at: str = ""
) -> Hold:
    """Hold every cell of a batch; a finished batch can be held too (a recall)."""
    return open_hold(
        scope=Hold.Scope.BATCH,
        target=batch.code,
        cells=batch.cells.all(),
        reason=reason,
        by=by,
        rule=rule,
        batch=batch,
        found_at=found_at,
    )


def hold_lot(lot: MaterialLot, *, by: Any, reason: str, rule: HoldRule | None = None) -> Hold:
    """Hold a lot and every cell that consumed it or a lot cut from it, at any depth (forward
    genealogy); later consumers of any of them join."""
    cells = Cell.objects.filter(
        consumptions__lot_id__in=lot_and_descendant_ids([lot.pk])
    ).distinct()
    return open_hold(
        scope=Hold.Scope.LOT, target=lot.code, cells=cells, reason=reason, by=by, rule=rule, lot=lot
    )


def press_cycle_code(station: Station, equipment_ref: str) -> str:
    """A press cycle's name: the press and the cycle (vessel load) id its results carry."""
    return f"{station.code}:{equipment_ref}"


@transaction.atomic
def hold_press_cycle(
    station: Station, equipment_ref: str, *, by: Any, reason: str, rule: HoldRule | None = None
) -> Hold:
    """Hold every cell pressed in one press cycle (vessel load): they saw the same cycle. A cell
    whose pressing result names the cycle later joins the hold while it is open."""
    lock_names([press_cycle_code(station, equipment_ref)])  # see record_steps
    cells = Cell.objects.filter(runs__station=station, runs__equipment_ref=equipment_ref).distinct()
    return open_hold(
        scope=Hold.Scope.PRESS_CYCLE,
        target=press_cycle_code(station, equipment_ref),
        cells=cells,
        reason=reason,
        by=by,
        rule=rule,
        station=station,
        found_at=StationKind.PRESSING,
    )


@transaction.atomic
def request_release(
    hold: Hold, *, by: Any, disposition: str, reason: str, rework_at: str = ""
) -> Hold:
    """Close a hold with a disposition: at once when it holds few cells, else by a worker
    (batches.tasks.close_hold) once this transaction commits, so a page never waits on a
    disposition of thousands of cells. Checked here either way; the hold stays open (its cells
    held) until the worker closes it, and `closing` says what is under way."""
    hold = Hold.objects.select_for_update(of=("self",)).get(pk=hold.pk)
    require_reason(reason)
    _check_disposition(hold, disposition, rework_at)
    if hold.closing:
        raise DomainError(
            "closing", _("Hold %(hold)s is being closed already.") % {"hold": hold.pk}
        )
    cells = hold.cells.exclude(status=Cell.Status.SCRAPPED).count()
    if cells <= settings.DISPOSITION_IN_REQUEST_MAX_CELLS:
        return release_hold(
            hold, by=by, disposition=disposition, reason=reason, rework_at=rework_at
        )
    hold.closing = {
        "disposition": disposition,
        "reason": reason,
        "rework_at": rework_at,
        "by": by if isinstance(by, str) else None,
        "user": None if isinstance(by, str) else by.pk,
        "cells": cells,
        "requested_at": timezone.now().isoformat(),
    }
    hold.closing_error = ""
    hold.save(update_fields=["closing", "closing_error"])
    record_event(
        actor=by,
        verb="hold_closing_requested",
        subject_type=hold.scope,
        subject=hold.target,
        reason=reason,
        data={"hold": hold.pk, "disposition": disposition, "cells": cells},
    )
    transaction.on_commit(partial(_send_close_hold, hold.pk))
    return hold


def _send_close_hold(hold_id: int) -> None:
    try:
        current_app.signature(CLOSE_HOLD).apply_async(
            args=[hold_id], queue=settings.CELERY_TASK_DEFAULT_QUEUE
        )
    except Exception:  # the broker is down: the hold stays open, saying so; ask again later
        logger.warning("Broker unavailable; hold %s not sent to the workers", hold_id)
        Hold.objects.filter(pk=hold_id).update(
            closing=None, closing_error="The workers could not be reached; ask again."
        )


def close_requested_hold(hold_id: int) -> Hold | None:
    """The worker's side of request_release: carry out the disposition asked for, or record why
    it could not be (the hold stays open, its cells held). A hold closed already is left alone."""
    with transaction.atomic():
        hold = Hold.objects.select_for_update(of=("self",)).get(pk=hold_id)
        if hold.status != Hold.Status.OPEN or not hold.closing:
            return None
        asked = hold.closing
        by = asked["by"] or get_user_model().objects.get(pk=asked["user"])
        try:
            with transaction.atomic():
                closed = release_hold(
                    hold,
                    by=by,
                    disposition=asked["disposition"],
                    reason=asked["reason"],
                    rework_at=asked.get("rework_at", ""),
                )
        except DomainError as refused:
            Hold.objects.filter(pk=hold_id).update(closing=None, closing_error=refused.detail)
            return None
        Hold.objects.filter(pk=hold_id).update(closing=None)
        return closed


@dataclass(frozen=True)
class DispositionPlan:
    """What a disposition of a hold will do to its cells, told before it is done."""

    disposition: str
    rework_at: str  # the step a rework sends cells back to ("" when each cell's last step)
    cells: int  # the hold's cells that are not scrapped already
    sent_back: Mapping[str, int]  # rework: station kind -> cells sent back to it
    going_on: int  # cells that go on as they are (released, or not yet at the rework step)
    scrapped: int


def plan_disposition(hold: Hold, *, disposition: str, rework_at: str = "") -> DispositionPlan:
    """What `disposition` of `hold` would do, changing nothing: the confirmation a page shows."""
    _check_disposition(hold, disposition, rework_at)
    cells = list(hold.cells.exclude(status=Cell.Status.SCRAPPED).select_related("batch"))
    sent_back: dict[str, int] = {}
    if disposition == Hold.Disposition.REWORK:
        for _, step in _rework_targets(hold, cells, rework_at):
            sent_back[step.station_kind] = sent_back.get(step.station_kind, 0) + 1
    scrapped = len(cells) if disposition == Hold.Disposition.SCRAP else 0
    return DispositionPlan(
        disposition=disposition,
        rework_at=(rework_at or hold.found_at) if disposition == Hold.Disposition.REWORK else "",
        cells=len(cells),
        sent_back=sent_back,
        going_on=len(cells) - scrapped - sum(sent_back.values()),
        scrapped=scrapped,
    )


@transaction.atomic
def release_hold(
    hold: Hold, *, by: Any, disposition: str, reason: str, rework_at: str = ""
) -> Hold:
    """Close a hold with quality's disposition for its cells; each cell gets an event saying
    what happened to it.

    release: the cells may go on; a cell held for its own failed run is accepted as it is
             (deviation) and moves past that step.
    rework:  the cells that have done step `rework_at` (a station kind; by default the step whose
             failure opened the hold) re-run it; those that have not reached it go on as they are.
             When neither step is known, each cell re-runs the last step it ran.
    scrap:   every cell of the hold is scrapped.
    """
    hold = Hold.objects.select_for_update(of=("self",)).select_related("run__step").get(pk=hold.pk)
    require_reason(reason)
    _check_disposition(hold, disposition, rework_at)
    cells = list(
        hold.cells.select_for_update(of=("self",))
        .select_related("batch__route", "next_step")
        .exclude(status=Cell.Status.SCRAPPED)
    )
    why = f"hold {hold.pk}: {reason}"
    if disposition == Hold.Disposition.SCRAP:
        _scrap_cells(cells, by=by, reason=why)
    elif disposition == Hold.Disposition.REWORK:
        reworked = _rework_targets(hold, cells, rework_at)
        _rework_cells(reworked, by=by, reason=why)
        sent_back = {cell.pk for cell, _ in reworked}
        going_on = [c for c in cells if c.pk not in sent_back]
        _release_cells(hold, going_on, by=by, reason=reason, deviation=False)
    else:
        _release_cells(hold, cells, by=by, reason=reason)
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
        data={
            "hold": hold.pk,
            "disposition": disposition,
            "cells": len(cells),
            "serials": [cell.serial for cell in cells],
        },
    )
    return hold


def _check_disposition(hold: Hold, disposition: str, rework_at: str) -> None:
    """What asking, planning and carrying out a disposition all refuse alike."""
    if disposition not in Hold.Disposition.values:
        raise DomainError(
            "invalid",
            _("Unknown disposition %(disposition)s.") % {"disposition": repr(disposition)},
            status=400,
        )
    if rework_at and rework_at not in StationKind.values:
        raise DomainError(
            "invalid",
            _("Unknown step %(rework_at)s to rework.") % {"rework_at": repr(rework_at)},
            status=400,
        )
    check_transition(Hold, hold.status, Hold.Status.CLOSED)


def _rework_targets(
    hold: Hold, cells: Sequence[Cell], rework_at: str
) -> list[tuple[Cell, RouteStep]]:
    """The cells a rework sends back, each with the step of its own route it re-runs: those that
    have done step `rework_at` (else the hold's failed step). A cell not there yet is left out: a
    rework never sends a cell back to a step it has not done. With no step known, each cell's
    last step."""
    kind = rework_at or hold.found_at
    if not kind:
        last_steps = _last_steps(cells)
        return [(cell, last_steps[cell.pk]) for cell in cells if cell.pk in last_steps]
    steps = {
        step.route_id: step
        for step in RouteStep.objects.filter(
            route_id__in={cell.batch.route_id for cell in cells}, station_kind=kind
        )
    }
    done = set(
        ProcessRun.objects.filter(
            cell_id__in=[cell.pk for cell in cells], step_id__in=[s.pk for s in steps.values()]
        ).values_list("cell_id", flat=True)
    )
    return [(cell, steps[cell.batch.route_id]) for cell in cells if cell.pk in done]


def _release_cells(
    hold: Hold, cells: Sequence[Cell], *, by: Any, reason: str, deviation: bool = True
) -> None:
    """The cells go on as they are; a cell held for its own failed run is accepted as it is
    (a deviation) and moves past that step, unless `deviation` is false (a rework's bystanders)."""
    own = next((c for c in cells if deviation and hold.run_id and c.pk == hold.run.cell_id), None)
    if own is not None and own.next_step_id == hold.run.step_id:
        record_event(
            actor=by,
            verb="deviation_accepted",
            subject_type="cell",
            subject=own.serial,
            reason=reason,
            data={"hold": hold.pk, "run": hold.run_id},
        )
        _advance(own, hold.run.step, at=timezone.now(), by=by)
    else:
        own = None
    record_events(
        [
            {
                "actor": by,
                "verb": "cell_released",
                "subject_type": "cell",
                "subject": cell.serial,
                "reason": reason,
                "data": {"hold": hold.pk},
            }
            for cell in cells
            if cell is not own
        ]
    )


def _last_steps(cells: Sequence[Cell]) -> dict[int, RouteStep]:
    """The step each cell ran last, in one query."""
    last: dict[int, RouteStep] = {}
    runs = (
        ProcessRun.objects.filter(cell_id__in=[cell.pk for cell in cells])
        .select_related("step")
        .order_by("cell_id", "finished_at", "id")
    )
    for run in runs:
        last[run.cell_id] = run.step
    return last


# ---------------------------------------------------------------- lot consumer counts


def compact_lot_consumer_counts() -> int:
    """Fold each lot's consumer-count rows (LotConsumerCount) into one, as the database's own
    function (batches migration 0029), which the runtime role may call but whose table it may
    only read. Returns how many rows went; the sums stay as they were."""
    return _fold("batches_compact_lot_consumer_counts()")


def compact_batch_step_counts() -> int:
    """Fold each batch's count rows of a step (BatchStepCount) into one, as the database's own
    function (batches migration 0033). Returns how many rows went; the sums stay as they were."""
    return _fold("batches_compact_batch_step_counts()")


def _fold(function: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}")
        return cursor.fetchone()[0]
