"""Roles, defined once: which group may do what. `sync_roles()` makes the database match.

Pages and the engineers' API both check these permissions (never group names), so a person's
rights come from their groups through Django's ordinary `user.has_perm`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required

# Custom permissions the dashboard checks; (app label, model, codename) -> description.
# They are created here rather than declared in a model's Meta so that no migration is needed.
CUSTOM_PERMISSIONS: dict[tuple[str, str, str], str] = {
    ("batches", "hold", "hold_cells"): "Can hold batches, lots and cells",
    ("batches", "hold", "disposition_hold"): "Can disposition holds (release, rework, scrap)",
    ("stations", "inboxentry", "requeue_result"): "Can send rejected station results again",
    ("batches", "holdrule", "supersede_holdrule"): "Can put new hold-rule thresholds in force",
    ("batches", "materiallot", "set_lot_status"): "Can release, quarantine or reject lots",
    ("quality", "nonconformance", "close_nonconformance"): "Can sign off and cancel NCRs",
    ("quality", "spcbaseline", "freeze_spc_baseline"): "Can freeze SPC control limits",
    ("analytics", "passportmasterdata", "release_passport_master_data"): (
        "Can release battery passport master data"
    ),
    ("lines", "stationstatechange", "correct_stop_reason"): "Can assign reasons of past stops",
    ("lines", "equipment", "lock_out_equipment"): "Can lock out, return and retire equipment",
    ("lines", "idealcycletime", "set_ideal_cycle_time"): "Can set recipes' ideal cycle times",
    ("quality", "experiment", "approve_experiment_deviation"): (
        "Can approve an experiment's setpoints outside the released limits"
    ),
}

# The permissions in full "app_label.codename" form, for has_perm and the views.
VIEW_LINES = "lines.view_line"
VIEW_RECIPES = "lines.view_recipe"
VIEW_BATCHES = "batches.view_batch"
VIEW_CELLS = "batches.view_cell"
VIEW_LOTS = "batches.view_materiallot"
VIEW_HOLDS = "batches.view_hold"
VIEW_STATION_RESULTS = "stations.view_inboxentry"
CREATE_BATCH = "batches.add_batch"
HOLD = "batches.hold_cells"
DISPOSITION = "batches.disposition_hold"
REQUEUE = "stations.requeue_result"
SET_HOLD_RULES = "batches.supersede_holdrule"
SET_LOT_STATUS = "batches.set_lot_status"
VIEW_NCRS = "quality.view_nonconformance"
OPEN_NCR = "quality.add_nonconformance"
EDIT_NCR = "quality.change_nonconformance"
CLOSE_NCR = "quality.close_nonconformance"
FREEZE_SPC_BASELINE = "quality.freeze_spc_baseline"
VIEW_EXPERIMENTS = "quality.view_experiment"
RUN_EXPERIMENTS = "quality.add_experiment"  # define, start, conclude and cancel
APPROVE_EXPERIMENT_DEVIATION = "quality.approve_experiment_deviation"
RECORD_READINGS = "environment.add_reading"  # dry-room sensor readings (a gateway's token)
RELEASE_PASSPORT_MASTER_DATA = "analytics.release_passport_master_data"
VIEW_EQUIPMENT = "lines.view_equipment"
CORRECT_STOP_REASON = "lines.correct_stop_reason"
LOCK_OUT_EQUIPMENT = "lines.lock_out_equipment"
SET_IDEAL_CYCLE_TIME = "lines.set_ideal_cycle_time"

_VIEWING = {
    VIEW_LINES,
    VIEW_RECIPES,
    VIEW_BATCHES,
    VIEW_CELLS,
    VIEW_LOTS,
    VIEW_HOLDS,
    VIEW_STATION_RESULTS,
    VIEW_NCRS,
    VIEW_EQUIPMENT,
    VIEW_EXPERIMENTS,
}

# What quality alone decides: dispositions, rule thresholds, lot status, signing off NCRs, phase II
# control limits, the passport's master data and experiment setpoints outside released limits.
_QUALITY = {
    DISPOSITION,
    SET_HOLD_RULES,
    SET_LOT_STATUS,
    CLOSE_NCR,
    FREEZE_SPC_BASELINE,
    RELEASE_PASSPORT_MASTER_DATA,
    APPROVE_EXPERIMENT_DEVIATION,
}

# What line engineers run: reasons of past stops, equipment lockouts, ideal cycle times.
_LINE_PERFORMANCE = {CORRECT_STOP_REASON, LOCK_OUT_EQUIPMENT, SET_IDEAL_CYCLE_TIME}

# group -> permissions. Everyone who works on the line sees everything; acting is narrower.
ROLES: dict[str, set[str]] = {
    "operator": set(_VIEWING),
    "line_engineer": _VIEWING
    | {CREATE_BATCH, HOLD, REQUEUE, RECORD_READINGS, OPEN_NCR, EDIT_NCR, RUN_EXPERIMENTS}
    | _LINE_PERFORMANCE,
    "quality_engineer": _VIEWING | {HOLD, REQUEUE, OPEN_NCR, EDIT_NCR, RUN_EXPERIMENTS} | _QUALITY,
    "admin": _VIEWING
    | {CREATE_BATCH, HOLD, REQUEUE, OPEN_NCR, EDIT_NCR, RUN_EXPERIMENTS}
    | _QUALITY
    | _LINE_PERFORMANCE,
    # A dry-room sensor gateway's account: it sends readings with its personal token, nothing else.
    "sensor_gateway": {RECORD_READINGS},
}


def sync_roles(**_signal_kwargs: Any) -> None:
    """Create the custom permissions and groups and set each group's permissions to ROLES.

    Idempotent; runs after every migrate (post_migrate, see core.apps), also after the test
    runner flushes the tables of a transactional test.
    """
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    for (app_label, model, codename), name in CUSTOM_PERMISSIONS.items():
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for group_name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = []
        for perm in sorted(perms):
            app_label, codename = perm.split(".")
            wanted.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(wanted)


def page_permission(perm: str) -> Callable:
    """Pages: an anonymous visitor goes to the sign-in page; a signed-in one without `perm` gets 403."""

    def decorate(view: Callable) -> Callable:
        return login_required(permission_required(perm, raise_exception=True)(view))

    return decorate
