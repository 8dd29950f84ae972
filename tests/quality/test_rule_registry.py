"""The hold rules' registry: each rule declared once, with what it holds and its thresholds."""

from __future__ import annotations

import pytest

from batches.models import Hold, HoldRule
from quality.rules import rule_thresholds
from quality.rules.registry import RULES, rule


def test_every_rule_of_the_domain_is_declared_with_what_it_holds():
    assert {code: r.holds for code, r in RULES.items()} == {
        "out_of_spec": Hold.Scope.CELL,
        "press_cycle_short": Hold.Scope.PRESS_CYCLE,
        "batch_insulation_failures": Hold.Scope.BATCH,
        "formation_hard_short": Hold.Scope.BATCH,
        "formation_ice_outliers": Hold.Scope.BATCH,
        "unusable_lot": Hold.Scope.CELL,
        "spc_signal": Hold.Scope.CELL,
        "dry_room_excursion": Hold.Scope.EXCURSION,
        "dry_room_exposure": Hold.Scope.LOT,
        "equipment_unusable": Hold.Scope.CELL,
    }


def test_a_threshold_is_the_versions_own_else_the_declared_default():
    ice = RULES["formation_ice_outliers"]
    assert rule_thresholds("formation_ice_outliers") == {
        "sigma": float,
        "cells": int,
        "min_cells": int,
    }
    version = HoldRule(code=ice.code, version=2, parameters={"cells": 3})
    assert ice.threshold(version, "cells") == 3
    assert ice.threshold(version, "min_cells") == 8 and ice.threshold(version, "sigma") == 3.0
    assert isinstance(ice.threshold(version, "sigma"), float)


def test_a_rule_must_hold_something_a_hold_can_hold():
    with pytest.raises(ValueError, match="not a hold scope"):
        rule("moon_phase", label="?", holds="planet", applies=lambda run: True)
    assert "moon_phase" not in RULES


def test_the_rules_page_shows_what_each_rule_holds_and_its_defaults(plant, signed_in, operator):
    html = signed_in(operator).get("/holds/rules/").content.decode()
    ice = html.split('id="rule-formation_ice_outliers"')[1].split("</section>")[0]
    assert "Holds: batch" in ice and 'placeholder="8"' not in ice  # an operator cannot edit
    assert "<code>min_cells</code> 8" in ice  # the threshold of the version in force


def test_a_quality_engineer_sees_the_defaults_of_thresholds_left_empty(
    plant, signed_in, quality_engineer
):
    html = signed_in(quality_engineer).get("/holds/rules/").content.decode()
    insulation = html.split('id="rule-batch_insulation_failures"')[1].split("</section>")[0]
    assert 'name="failures"' in insulation and 'placeholder="2"' in insulation


def test_a_bare_migrate_puts_every_rule_in_force_with_its_defaults(db, api_as, operator):
    from django.core.management import call_command

    HoldRule.objects.all().delete()  # a database no one has seeded
    call_command("migrate", verbosity=0)
    in_force = {r.code: r.parameters for r in HoldRule.objects.filter(in_force=True, version=1)}
    assert in_force == {
        code: {name: t.default for name, t in rule.thresholds.items()}
        for code, rule in RULES.items()
    }
    call_command("migrate", verbosity=0)  # again: nothing more
    assert HoldRule.objects.count() == len(RULES)
    listed = api_as(operator).get("/api/v1/hold-rules").json()
    assert listed["count"] == len(RULES)
    ice = next(r for r in listed["results"] if r["code"] == "formation_ice_outliers")
    assert (ice["version"], ice["active"], ice["holds"]) == (1, True, "Batch")
    assert ice["parameters"] == {"sigma": 3, "cells": 2, "min_cells": 8}


def test_a_rule_quality_retired_stays_retired_after_migrate(db, api_as, operator):
    from django.core.management import call_command

    HoldRule.objects.filter(code="formation_hard_short").update(in_force=False)
    call_command("migrate", verbosity=0)
    assert not HoldRule.objects.filter(code="formation_hard_short", in_force=True).exists()
    listed = api_as(operator).get("/api/v1/hold-rules").json()["results"]
    retired = next(r for r in listed if r["code"] == "formation_hard_short")
    assert (retired["active"], retired["version"]) == (False, 1)
    assert api_as(None).get("/api/v1/hold-rules").status_code == 401
