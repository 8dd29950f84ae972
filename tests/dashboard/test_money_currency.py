"""A line's costs and the programme's targets per kWh in the line's currency, on the batch, line
and home pages, and judged against the targets stated in that currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.energy import BatchEconomics, cost_targets
from lines.models import Line

JA = {"HTTP_ACCEPT_LANGUAGE": "ja"}

JPY_TARGETS = {"USD": ["75", "65"], "JPY": ["11000", "9500"]}


@pytest.fixture
def yen_line(plant):
    Line.objects.filter(code="proto").update(currency="JPY")
    return Line.objects.get(code="proto")


def test_the_batch_page_shows_targets_in_the_lines_currency(
    worked_batch, signed_in, operator, settings
):
    batch = worked_batch(4)
    client = signed_in(operator)
    url = reverse("batch", args=[batch.code])
    assert "targets $75.00/kWh FY2028, $65.00/kWh after" in client.get(url).content.decode()

    Line.objects.filter(code="proto").update(currency="JPY")
    settings.COST_TARGETS_PER_KWH = JPY_TARGETS
    page = client.get(url).content.decode()
    assert "targets ¥11,000/kWh FY2028, ¥9,500/kWh after" in page
    assert (
        "目標 ¥11,000/kWh（2028 年度）、その後 ¥9,500/kWh" in client.get(url, **JA).content.decode()
    )
    assert "$75" not in page and "$0.00" not in page  # the material and process costs too

    # A plant costing in yen that states no yen targets: no dollar figure passed off as yen.
    settings.COST_TARGETS_PER_KWH = {"USD": ["75", "65"]}
    page = client.get(url).content.decode()
    assert "good cells only</span>" in page
    assert "$75" not in page and "¥75" not in page


def test_the_line_and_home_pages_show_targets_in_the_lines_currency(
    yen_line, signed_in, operator, settings
):
    settings.COST_TARGETS_PER_KWH = JPY_TARGETS
    client = signed_in(operator)
    line_page = client.get(reverse("line", args=["proto"])).content.decode()
    assert "targets ¥11,000 (FY2028) and ¥9,500/kWh" in line_page
    home = client.get(reverse("home")).content.decode()
    assert "targets ¥11,000 (FY2028), ¥9,500" in home
    # The other line still costs in dollars, against the dollar targets.
    assert "targets $75.00 (FY2028), $65.00" in home
    assert "¥75" not in home and "¥75" not in line_page


def test_a_cost_is_judged_against_the_targets_in_its_own_currency(settings):
    settings.COST_TARGETS_PER_KWH = JPY_TARGETS
    figures = {
        "material_cost": Decimal("900"),
        "process_cost": Decimal("100"),
        "cells_started": 10,
        "good_cells": 10,
        "good_energy_wh": 100.0,  # 1,000 for 0.1 kWh: 10,000 per kWh
    }
    assert cost_targets("jpy") == (Decimal("11000"), Decimal("9500"))
    assert BatchEconomics(**figures, currency="JPY").standing == "warn"  # 9,500 < 10,000 <= 11,000
    assert BatchEconomics(**figures, currency="USD").standing == "bad"  # 10,000 > $75
    settings.COST_TARGETS_PER_KWH = {"USD": ["75", "65"]}
    assert cost_targets("JPY") is None
    assert BatchEconomics(**figures, currency="JPY").standing == ""  # no yen targets: uncoloured
