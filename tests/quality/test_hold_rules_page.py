"""The hold rules page: every rule with the thresholds in force and its versions; quality puts
new thresholds in force there (as the next version, with a reason)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from batches.models import HoldRule
from quality.rules.registry import RULES


def _panel(html: str, code: str) -> str:
    return html.split(f'id="rule-{code}"')[1].split("</section>")[0]


def test_every_rule_is_listed_with_its_version_in_force(plant, signed_in, operator):
    html = signed_in(operator).get(reverse("hold-rules")).content.decode()
    for code in RULES:
        assert "v1</span>" in _panel(html, code), code
    insulation = _panel(html, "batch_insulation_failures")
    assert "<code>failures</code> 2" in insulation  # an operator sees the thresholds, no form
    assert "<form" not in html.split('id="rule-')[1]
    assert "No thresholds" in _panel(html, "out_of_spec")


def test_quality_puts_new_thresholds_in_force_as_the_next_version(
    plant, signed_in, quality_engineer
):
    client = signed_in(quality_engineer)
    url = reverse("hold-rule-supersede", args=["formation_ice_outliers"])
    form = {"sigma": "3.5", "cells": "3", "min_cells": "", "reason": "fewer false alarms"}
    response = client.post(url, form, follow=True)
    assert response.redirect_chain[-1][0].endswith("#rule-formation_ice_outliers")
    html = response.content.decode()
    assert "formation_ice_outliers v2 is in force." in html
    new = HoldRule.objects.get(code="formation_ice_outliers", in_force=True)
    assert (new.version, new.parameters) == (2, {"sigma": 3.5, "cells": 3})  # min_cells: default
    panel = _panel(html, "formation_ice_outliers")
    assert "retired" in panel and "cells=3, sigma=3.5" in panel


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"failures": "0", "reason": "tighter"},
            "Invalid thresholds. failures: A positive number.",
        ),
        ({"failures": "2.5", "reason": "tighter"}, "failures: Enter a whole number."),
        ({"failures": "3", "reason": " "}, "reason: This field is required."),
    ],
)
def test_bad_thresholds_or_no_reason_change_nothing(
    plant, signed_in, quality_engineer, form, message
):
    url = reverse("hold-rule-supersede", args=["batch_insulation_failures"])
    response = signed_in(quality_engineer).post(url, form)
    page = response.content.decode()
    assert response.status_code == 400
    # The error beside the rule's own form, which keeps what was typed.
    refused = page.index('id="rule-batch_insulation_failures-refused"')
    assert message in page[refused : page.index("</div>", refused)]
    assert 'name="failures" type="number" step="any" min="0" size="6"' in page
    assert f'value="{form["failures"]}"' in page[refused:]
    assert not HoldRule.objects.filter(version=2).exists()


@pytest.mark.parametrize("persona", ["operator", "line_engineer"])
def test_only_quality_may_put_thresholds_in_force(plant, signed_in, request, persona):
    client = signed_in(request.getfixturevalue(persona))
    url = reverse("hold-rule-supersede", args=["batch_insulation_failures"])
    response = client.post(url, {"failures": "3", "reason": "let me"})
    assert response.status_code == 403
    assert not HoldRule.objects.filter(version=2).exists()


def test_an_unknown_rule_is_404(plant, signed_in, quality_engineer):
    url = reverse("hold-rule-supersede", args=["moon_phase"])
    response = signed_in(quality_engineer).post(url, {"reason": "why not"})
    assert response.status_code == 404
