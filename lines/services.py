"""Every state change of lines, stations and recipes goes through these services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.services import record_event
from core.errors import DomainError, check_transition
from lines.models import (
    DowntimeReason,
    Recipe,
    RecipeParameter,
    RecipeVersion,
    Station,
    StationStateChange,
)


def recipe_label(recipe: Recipe) -> str:
    return f"{recipe.line.code}/{recipe.station_kind}"


@transaction.atomic
def create_recipe_version(
    recipe: Recipe, *, by: Any, parameters: dict[str, dict[str, Any]], note: str = ""
) -> RecipeVersion:
    """A new draft version; `parameters` maps a name to unit, target, min, max (and required)."""
    last = recipe.versions.select_for_update().order_by("-version").first()
    version = RecipeVersion.objects.create(
        recipe=recipe, version=(last.version + 1 if last else 1), note=note
    )
    RecipeParameter.objects.bulk_create(
        RecipeParameter(
            version=version,
            name=name,
            unit=spec.get("unit", ""),
            target=spec.get("target"),
            min=spec.get("min"),
            max=spec.get("max"),
            required=spec.get("required", True),
        )
        for name, spec in parameters.items()
    )
    record_event(
        actor=by,
        verb="recipe_version_created",
        subject_type="recipe",
        subject=recipe_label(recipe),
        reason=note,
        data={"version": version.version},
    )
    return version


@transaction.atomic
def release_recipe_version(version: RecipeVersion, *, by: Any) -> RecipeVersion:
    """Release a draft: it becomes the recipe's active version and supersedes the one before."""
    version = RecipeVersion.objects.select_for_update().get(pk=version.pk)
    check_transition(RecipeVersion, version.status, RecipeVersion.Status.RELEASED)
    previous = (
        RecipeVersion.objects.select_for_update()
        .filter(recipe_id=version.recipe_id, status=RecipeVersion.Status.RELEASED)
        .first()
    )
    if previous is not None:
        previous.status = RecipeVersion.Status.SUPERSEDED
        previous.save(update_fields=["status"])
    version.status = RecipeVersion.Status.RELEASED
    version.released_at = timezone.now()
    version.released_by = None if isinstance(by, str) else by
    version.save(update_fields=["status", "released_at", "released_by"])
    record_event(
        actor=by,
        verb="recipe_version_released",
        subject_type="recipe",
        subject=recipe_label(version.recipe),
        reason=version.note,
        data={"version": version.version, "superseded": previous.version if previous else None},
    )
    return version


def supersede_recipe(
    recipe: Recipe, *, by: Any, parameters: dict[str, dict[str, Any]], note: str
) -> RecipeVersion:
    """Create and release a new version in one step; the old version stays as it was."""
    with transaction.atomic():
        return release_recipe_version(
            create_recipe_version(recipe, by=by, parameters=parameters, note=note), by=by
        )


def active_recipe_version(station: Station) -> RecipeVersion:
    """The released version of the station's default recipe (the line's, for designs without
    their own; one at most: a constraint), its parameters read once per process
    (RecipeVersion.parameters_by_name)."""
    try:
        return (
            RecipeVersion.objects.released()
            .select_related("recipe")
            .get(
                recipe__line_id=station.line_id,
                recipe__station_kind=station.kind,
                recipe__design__isnull=True,
            )
        )
    except RecipeVersion.DoesNotExist:
        raise DomainError(
            "no_recipe",
            _("No released %(step)s recipe on line %(line)s.")
            % {"step": station.kind, "line": station.line_id},
            status=409,
        ) from None


@transaction.atomic
def set_station_state(
    station: Station,
    *,
    state: str,
    by: Any,
    reason: str = "",
    occurred_at: datetime | None = None,
    reason_code: str = "",
) -> Station:
    """Record a station's state; the history feeds availability, the current state the line view.

    A report of the state (and reason) already in force at `occurred_at` is not a new event:
    equipment repeats its state as a heartbeat and resends what got no answer, and each would
    otherwise add a history row and an audit event. It records nothing and returns the station.

    A `reason_code` (or a `reason` that is one) names the downtime-reason catalogue's entry; a
    code not in it is refused. A late report lands in its place in the history and moves the
    station's current state only when it is the latest.
    """
    if state not in Station.State.values:
        raise DomainError(
            "invalid", _("Unknown station state %(state)s.") % {"state": repr(state)}, status=400
        )
    catalogued = DowntimeReason.objects.filter(code__in={reason_code, reason} - {""})
    by_code = {r.code: r for r in catalogued}
    if reason_code and reason_code not in by_code:
        raise DomainError(
            "invalid",
            _("Unknown downtime reason."),
            errors={"reason_code": [f"No downtime reason {reason_code!r} in the catalogue."]},
            status=400,
        )
    downtime_reason = by_code.get(reason_code) or by_code.get(reason)
    occurred_at = occurred_at or timezone.now()
    station = Station.objects.select_for_update().get(pk=station.pk)
    # The index on (station, occurred_at) serves it; a late report is compared with the state
    # in force when it happened, not with the current one.
    in_force = (
        StationStateChange.objects.filter(station=station, occurred_at__lte=occurred_at)
        .order_by("-occurred_at", "-id")
        .values_list("state", "reason", "downtime_reason_id")
        .first()
    )
    if in_force == (state, reason, downtime_reason.pk if downtime_reason else None):
        return station
    StationStateChange.objects.create(
        station=station,
        state=state,
        reason=reason,
        downtime_reason=downtime_reason,
        occurred_at=occurred_at,
    )
    # A late report does not overwrite a newer state.
    if station.state_since is None or occurred_at >= station.state_since:
        station.state = state
        station.state_since = occurred_at
        station.save(update_fields=["state", "state_since"])
    record_event(
        actor=by,
        verb="station_state",
        subject_type="station",
        subject=station.code,
        reason=reason,
        data={
            "state": state,
            "occurred_at": occurred_at.isoformat(),
            "reason_code": downtime_reason.code if downtime_reason else None,
        },
    )
    return station
