"""What every dashboard page's header needs: the lines to navigate to, the user's roles and
whether the workers keep up with the stations."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from core.roles import ROLES
from lines.models import Line
from stations.selectors import ingestion_backlog

# The roles as the header names them, in the page's language.
ROLE_NAMES = {
    "operator": _("operator"),
    "line_engineer": _("line engineer"),
    "quality_engineer": _("quality engineer"),
    "admin": _("admin"),
    "sensor_gateway": _("sensor gateway"),
}


def _roles_of(request: HttpRequest) -> list[str]:
    user = request.user
    if not user.is_authenticated:
        return []
    names = [g.name for g in user.groups.all() if g.name in ROLES]
    return [str(ROLE_NAMES.get(n, n.replace("_", " "))) for n in names] or [str(_("no role"))]


def navigation(request: HttpRequest) -> dict:
    # Lazy: a page that does not render the header (an htmx fragment) costs no query.
    return {
        "nav_lines": SimpleLazyObject(lambda: list(Line.objects.only("code", "name"))),
        "nav_roles": SimpleLazyObject(lambda: _roles_of(request)),
        "ingestion": SimpleLazyObject(ingestion_backlog),
    }
