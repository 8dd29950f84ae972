"""Presentation helpers of the dashboard templates (formatting only, no queries)."""

from __future__ import annotations

from datetime import datetime

import segno
from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag
def qr_svg(text: str, scale: int = 3) -> SafeString:
    """An inline SVG QR code carrying `text` (a serial, or a URL such as a cell's passport)."""
    qr = segno.make(text, error="m", micro=False)
    svg = qr.svg_inline(scale=scale, border=2, omitsize=False, title=text)
    return mark_safe(svg)  # segno writes the markup itself; `text` is in a <title> it escapes


@register.filter
def age(since: datetime | None) -> str:
    """How long ago, compactly: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    if since is None:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def num(value: float | None, digits: int = 4) -> str:
    """A measured value with up to `digits` significant figures, no trailing zeros."""
    if value is None:
        return "–"
    return f"{value:.{digits}g}"


@register.filter
def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


@register.filter
def limit_value(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) or "–"


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key) if mapping else None


@register.filter
def window_pairs(summary: object) -> list[tuple[str, object]]:
    """A line summary's two windows with their labels, for one loop in the template."""
    return [("Today", summary.today), ("This week", summary.week)]


@register.filter
def words(code: str) -> str:
    """A machine code as words: hold_opened -> hold opened."""
    return str(code).replace("_", " ")


@register.filter
def excursion_zone(code: str) -> str:
    """The zone of an excursion's hold target (lines.models.Excursion.code: ZONE-X<number>)."""
    return code.rpartition("-X")[0]
