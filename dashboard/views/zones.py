"""A dry-room zone's page: its air over a window against its limits, and its excursions with the
cells and lots each held."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from core import roles
from environment import selectors
from environment.judging import bounds
from lines import display
from lines.models import ZONE_QUANTITIES, Line, Zone

# The windows a zone's chart can show, in hours; the first is the default.
WINDOWS_H = (6, 1, 24, 168)


@roles.page_permission(roles.VIEW_LINES)
def zone_detail(request: HttpRequest, code: str) -> HttpResponse:
    zone = get_object_or_404(Zone.objects.select_related("line"), code=code)
    try:
        hours = int(request.GET.get("hours", WINDOWS_H[0]))
    except ValueError:
        hours = WINDOWS_H[0]
    if hours not in WINDOWS_H:
        hours = WINDOWS_H[0]
    until = timezone.now()
    since = until - timedelta(hours=hours)
    excursions = selectors.zone_excursions(zone, since, until)
    chart = {
        "since": int(since.timestamp() * 1000),
        "until": int(until.timestamp() * 1000),
        "quantities": [
            {
                "key": quantity,
                "label": display.label(quantity),
                "unit": unit,
                "limits": [
                    {"bound": bound, "value": limit}
                    for q, bound, limit in bounds(zone)
                    if q == quantity
                ],
                "series": series,
            }
            for (quantity, (_label, unit, _)), series in zip(
                ZONE_QUANTITIES.items(),
                selectors.zone_series(zone, since, until).values(),
                strict=True,
            )
        ],
        "excursions": [
            {
                "quantity": row.excursion.quantity,
                "from": int(row.excursion.started_at.timestamp() * 1000),
                "to": int((row.excursion.ended_at or until).timestamp() * 1000),
                "counted": row.excursion.counted_at is not None,
            }
            for row in excursions
        ],
    }
    return render(
        request,
        "zones/zone_detail.html",
        {
            "zone": zone,
            "stations": zone.stations.order_by("code"),
            "limits": [
                (display.label(q), bound, limit, ZONE_QUANTITIES[q][1])
                for q, bound, limit in bounds(zone)
            ],
            "hours": hours,
            "windows": WINDOWS_H,
            "excursions": excursions,
            "chart": chart,
        },
    )


@roles.page_permission(roles.VIEW_LINES)
def line_zones(request: HttpRequest, code: str) -> HttpResponse:
    """The line view's dry rooms, re-fetched every few seconds."""
    line = get_object_or_404(Line, code=code)
    return render(request, "zones/_line_zones.html", {"zones": selectors.zone_states(line)})
