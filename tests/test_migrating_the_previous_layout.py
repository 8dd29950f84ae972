"""A database of the layout before the apps were split (the inbox and grading in batches, station
tokens in lines, hold-rule versions 'active') migrates forward with every row in place and read by
the models of the new layout."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audit.models import Event
from batches.models import Cell, HoldRule
from lines.models import Station
from quality.models import CellGrade, GradingRuleSet
from quality.rules.registry import RULES
from stations.models import InboxEntry, StationToken
from stations.services import issue_station_token

# The last migration of each app before the split; the apps it created did not exist.
PREVIOUS_LAYOUT = [
    ("audit", "0002_event_append_only"),
    ("lines", "0002_released_recipe_versions_immutable"),
    ("batches", "0007_inbox_autovacuum"),
    ("stations", None),
    ("quality", None),
]
# Tables whose rows the move itself changes: which migrations ran, which app a model is in.
BOOKKEEPING = {"django_migrations", "django_content_type"}


def _tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        return [name for (name,) in cursor.fetchall() if name not in BOOKKEEPING]


def _columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def _last_ids(tables: list[str]) -> dict[str, int]:
    last = {}
    with connection.cursor() as cursor:
        for table in tables:
            if "id" in _columns(table):
                cursor.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')
                last[table] = cursor.fetchone()[0]
    return last


def _fingerprint(
    columns: dict[str, list[str]], up_to: dict[str, int]
) -> dict[str, tuple[int, str]]:
    """Each table's row count and a digest of its rows in the given columns, as text, up to the
    last id it had: later migrations may add columns, and rows of their own (tested apart), but
    the rows there were must keep every value they had."""
    prints = {}
    with connection.cursor() as cursor:
        for table, names in columns.items():
            row = "row(" + ", ".join(f'"{name}"' for name in names) + ")::text"
            where = f"WHERE id <= {up_to[table]}" if table in up_to else ""
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) "
                f'FROM "{table}" {where}'
            )
            prints[table] = cursor.fetchone()
    return prints


def _applied(app: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = %s", [app])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_seeded_demo_of_the_previous_layout_migrates_forward_with_every_row():
    call_command("seed_demo", verbosity=0)
    issue_station_token(Station.objects.get(code="PR-PRS-1"), by="test")
    # Back to the previous layout, data and all: what a plant running the earlier release has.
    executor = MigrationExecutor(connection)
    executor.migrate(PREVIOUS_LAYOUT)
    assert "active" in _columns("batches_holdrule") and "in_force" not in _columns(
        "batches_holdrule"
    )
    assert _applied("stations") == _applied("quality") == 0
    assert ContentType.objects.filter(app_label="batches", model="inboxentry").exists()
    assert ContentType.objects.filter(app_label="lines", model="stationtoken").exists()
    columns = {table: _columns(table) for table in _tables()}
    last_ids = _last_ids(list(columns))
    before = _fingerprint(columns, last_ids)
    assert before["batches_inboxentry"][0] > 0 and before["lines_stationtoken"][0] > 0
    assert before["batches_cellgrade"][0] > 0 and before["batches_holdrule"][0] > 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT code, version FROM batches_holdrule WHERE active")
        rules_in_force = set(cursor.fetchall())
    requeuers = set(
        Group.objects.filter(permissions__codename="requeue_result").values_list("name", flat=True)
    )
    assert requeuers

    call_command("migrate", verbosity=0)

    # Not a row added, lost or changed, in any table (the rule versions' flag under its new name).
    renamed = ["in_force" if c == "active" else c for c in columns["batches_holdrule"]]
    assert _fingerprint({**columns, "batches_holdrule": renamed}, last_ids) == before
    # What migrate adds: the first version of each rule the previous layout did not know.
    new_rules = HoldRule.objects.filter(pk__gt=last_ids["batches_holdrule"])
    assert set(new_rules.values_list("code", flat=True)) == set(RULES) - {
        code for code, _ in rules_in_force
    }
    assert (
        not Event.objects.filter(pk__gt=last_ids["audit_event"])
        .exclude(actor="migrate", verb="hold_rule_put_in_force")
        .exists()
    )
    assert InboxEntry.objects.count() == before["batches_inboxentry"][0]
    assert StationToken.objects.count() == before["lines_stationtoken"][0]
    assert CellGrade.objects.count() == before["batches_cellgrade"][0]
    assert GradingRuleSet.objects.count() == before["batches_gradingruleset"][0]
    assert (
        set(
            HoldRule.objects.filter(
                in_force=True, pk__lte=last_ids["batches_holdrule"]
            ).values_list("code", "version")
        )
        == rules_in_force
    )
    graded = CellGrade.objects.select_related("cell", "rule_set").first()
    assert Cell.objects.get(pk=graded.cell_id).grade != "" and graded.rule_set.design_id
    # The moved models' permissions moved with them: the groups keep what they were given.
    inbox = ContentType.objects.get_for_model(InboxEntry)
    assert (inbox.app_label, ContentType.objects.get_for_model(CellGrade).app_label) == (
        "stations",
        "quality",
    )
    assert not ContentType.objects.filter(app_label="batches", model="inboxentry").exists()
    assert requeuers == set(
        Group.objects.filter(
            permissions__content_type=inbox, permissions__codename="requeue_result"
        ).values_list("name", flat=True)
    )
