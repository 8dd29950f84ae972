"""The batch page's passport exports, loaded by the section that shows them."""

from __future__ import annotations

from django import template

from analytics.models import PassportExport
from batches.models import Batch

register = template.Library()

SHOWN = 5


@register.simple_tag
def passport_exports(batch: Batch) -> list[PassportExport]:
    """The batch's latest exports, newest first."""
    return list(PassportExport.objects.filter(batch=batch).select_related("requested_by")[:SHOWN])
