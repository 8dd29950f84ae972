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

_VIEWING = {
    VIEW_LINES,
    VIEW_RECIPES,
    VIEW_BATCHES,
    VIEW_CELLS,
    VIEW_LOTS,
    VIEW_HOLDS,
    VIEW_STATION_RESULTS,
}

# group -> permissions. Everyone who works on the line sees everything; acting is narrower.
ROLES: dict[str, set[str]] = {
    "operator": set(_VIEWING),
    "line_engineer": _VIEWING | {CREATE_BATCH, HOLD, REQUEUE, RECORD_READINGS},
    "quality_engineer": _VIEWING | {HOLD, DISPOSITION, REQUEUE, SET_HOLD_RULES, SET_LOT_STATUS},
    "admin": _VIEWING | {CREATE_BATCH, HOLD, DISPOSITION, REQUEUE, SET_HOLD_RULES, SET_LOT_STATUS},
    # A dry-room sensor gateway's account: it sends readings with its personal token, nothing else.
    "sensor_gateway": {RECORD_READINGS},
}
# Non-conformance reports: everyone reads them, engineers open and work them, and only quality
# signs one off (closure, with the password re-entered) or cancels it.
for _group, _ncr_perms in {
    "operator": {VIEW_NCRS},
    "line_engineer": {VIEW_NCRS, OPEN_NCR, EDIT_NCR},
    "quality_engineer": {VIEW_NCRS, OPEN_NCR, EDIT_NCR, CLOSE_NCR},
    "admin": {VIEW_NCRS, OPEN_NCR, EDIT_NCR, CLOSE_NCR},
}.items():
    ROLES[_group] |= _ncr_perms
ROLES["quality_engineer"] |= {FREEZE_SPC_BASELINE}  # phase II control limits are quality's
ROLES["admin"] |= {FREEZE_SPC_BASELINE}
# Experiment lots: engineers run them; only quality lets setpoints leave the released limits.
ROLES["operator"] |= {VIEW_EXPERIMENTS}
ROLES["line_engineer"] |= {VIEW_EXPERIMENTS, RUN_EXPERIMENTS}
ROLES["quality_engineer"] |= {VIEW_EXPERIMENTS, RUN_EXPERIMENTS, APPROVE_EXPERIMENT_DEVIATION}
ROLES["admin"] |= {VIEW_EXPERIMENTS, RUN_EXPERIMENTS, APPROVE_EXPERIMENT_DEVIATION}


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
