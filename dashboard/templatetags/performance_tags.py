"""Filters of the line-performance pages."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as h:mm (or m:ss under an hour); – for none."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(hours)d:%(minutes)02d h") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d:%(seconds)02d min") % {"minutes": minutes, "seconds": secs}
