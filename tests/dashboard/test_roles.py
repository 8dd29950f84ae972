"""Roles are defined once (core.roles.ROLES) and the database follows them."""

from __future__ import annotations

from django.contrib.auth.models import Group

from core.roles import ROLES, sync_roles


def test_each_group_has_exactly_its_roles_permissions(db):
    sync_roles()
    for name, perms in ROLES.items():
        group = Group.objects.get(name=name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert granted == perms, name


def test_sync_roles_is_idempotent_and_restores_a_changed_group(db):
    sync_roles()
    operator = Group.objects.get(name="operator")
    operator.permissions.clear()
    sync_roles()
    sync_roles()
    assert operator.permissions.count() == len(ROLES["operator"])
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)


def test_who_may_do_what(operator, line_engineer, quality_engineer, outsider, db):
    def may(user, perm: str) -> bool:
        return user.has_perm(perm)

    assert may(operator, "batches.view_batch") and not may(operator, "batches.hold_cells")
    assert may(line_engineer, "batches.hold_cells") and may(line_engineer, "batches.add_batch")
    assert not may(line_engineer, "batches.disposition_hold")
    assert may(quality_engineer, "batches.disposition_hold")
    assert not may(quality_engineer, "batches.add_batch")
    assert not may(outsider, "batches.view_batch")
    # Everyone sees the station results not applied; engineers may send rejected ones again.
    assert may(operator, "stations.view_inboxentry") and not may(
        operator, "stations.requeue_result"
    )
    assert may(line_engineer, "stations.requeue_result")
    assert may(quality_engineer, "stations.requeue_result")
    assert not may(outsider, "stations.view_inboxentry")
    # Quality puts new hold-rule thresholds in force.
    assert may(quality_engineer, "batches.supersede_holdrule")
    assert not may(line_engineer, "batches.supersede_holdrule")
