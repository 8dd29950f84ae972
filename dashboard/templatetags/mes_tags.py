"""Presentation helpers of the dashboard templates (formatting only, no queries)."""

from __future__ import annotations

import functools
import html
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import segno
from django import template
from django.conf import settings
from django.db.models import Choices, Field, Model
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from batches.models import Hold, ProcessRun
from lines import display
from lines.models import DowntimeReason, Equipment, Station, StationKind
from quality.rules import RULES

register = template.Library()

# Printed the same in both languages: ISO order reads unambiguously on the floor and in the
# admin, and the zone's abbreviation (JST) says which clock it is.
_WHEN_FORMATS = {"": "%Y-%m-%d %H:%M", "s": "%Y-%m-%d %H:%M:%S", "time": "%H:%M:%S"}

# Money per currency: symbol and the decimals people quote it in (JPY has no minor unit).
_CURRENCIES = {"JPY": ("¥", 0), "USD": ("$", 2), "EUR": ("€", 2)}


@register.simple_tag
def qr_svg(text: str, scale: int = 3) -> SafeString:
    """An inline SVG QR code carrying `text` (a serial, or a URL such as a cell's passport)."""
    qr = segno.make(text, error="m", micro=False)
    svg = qr.svg_inline(scale=scale, border=2, omitsize=False, title=text)
    return mark_safe(svg)  # segno writes the markup itself; `text` is in a <title> it escapes


# One step's bar; every value put in is escaped or a number.
_PROGRESS_STEP = (
    '<div class="pstep" title="{}">\n'
    '<div class="lbl"><span>{}. {}</span></div>\n'
    '<div class="bar"><span class="pass" style="width:{}%"></span>'
    '<span class="fail" style="width:{}%"></span></div>\n'
    '<div class="counts"><span class="p">{}</span> · <span class="f">{}</span> · {}</div>\n'
    "</div>"
)


@register.simple_tag
def progress_steps(progress) -> SafeString:
    """A batch's progress per route step (batches.selectors.BatchProgress): passed (green) and
    failed (red) bars and the counts. In Python, not a template: the line view shows dozens of
    batches of five steps each, and rendering them as templates took most of its time. Escaped
    by the standard library's html.escape, as Django's escape does, without its lazy-string
    checks on each of the thousands of values."""
    labels, titled, passed, failed, waiting = _progress_words(get_language())
    rows = []
    for s in progress.steps:
        label = labels.get(s.step.station_kind, s.step.station_kind)
        title = titled % {
            "step": label,
            "passed": s.passed,
            "failed": s.failed,
            "waiting": s.waiting,
            "total": s.total,
        }
        rows.append(
            _PROGRESS_STEP.format(
                html.escape(title),
                int(s.step.position),
                html.escape(label),
                _percent(s.passed_pct),
                _percent(s.failed_pct),
                html.escape(passed % {"n": s.passed}),
                html.escape(failed % {"n": s.failed}),
                html.escape(waiting % {"n": s.waiting}),
            )
        )
    return mark_safe('<div class="progress-steps">\n' + "\n".join(rows) + "\n</div>")


@register.simple_tag
def timeline_entries(events) -> SafeString:
    """A batch's timeline (batch_detail.html): each event's time, verb, subject if not the
    batch, actor, disposition, cells and reason. In Python, not a template, for the reason of
    progress_steps: two hundred entries as template nodes took half the page's rendering; and
    escaped by html.escape, not format_html, which cost as much again."""
    on = _('on %(kind)s <span class="mono">%(subject)s</span>')
    by, cells = _("by %(who)s"), {}
    entries = []
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        text = (
            f'<li class="v-{html.escape(str(event.verb))}"><span class="when">'
            f"{html.escape(when(event.occurred_at, 's'))}</span> · "
            f"<b>{html.escape(event_label(event.verb))}</b>"
        )
        if event.subject_type != "batch":
            kind, subject = hold_scope_label(event.subject_type), event.subject
            text += " " + on % {"kind": html.escape(kind), "subject": html.escape(str(subject))}
        text += " " + html.escape(by % {"who": actor_label(event.actor)})
        if data.get("disposition"):
            text += ": " + html.escape(disposition_label(data["disposition"]))
        if data.get("serials"):
            count = data.get("cells", len(data["serials"]))
            if count not in cells:
                cells[count] = ngettext("%(counter)s cell:", "%(counter)s cells:", count)
            serials = Truncator(", ".join(map(str, data["serials"]))).chars(400)
            text += (
                f'<br><span class="small">{html.escape(cells[count] % {"counter": count})}'
                f' <span class="mono">{html.escape(serials)}</span></span>'
            )
        if event.reason:
            text += f'<br><span class="reason">“{html.escape(event.reason)}”</span>'
        entries.append(text + "</li>")
    return mark_safe("\n".join(entries))


@register.filter
def rework_options(steps) -> list[tuple[str, str]]:
    """The steps a rework may send cells back to, as the disposition form offers them ("Rework
    at Pressing"): formatted here, not by a blocktranslate node per step of every open hold's
    form, which took a fifth of the holds queue's rendering."""
    at = _("Rework at %(label)s")
    return [(value, at % {"label": label}) for value, label in steps]


@functools.lru_cache(maxsize=64)
def _choice_labels(choices: type[Choices], language: str | None) -> dict[str, str]:
    """A choices class's labels in `language`, the active one, translated once per language.
    (A model's get_FOO_display hashes every lazy label of the field's choices, a translation
    lookup each, on every call: thousands for a page of holds.)"""
    return {value: str(label) for value, label in choices.choices}


def choice_label(choices: type[Choices], code: str) -> str:
    """A choice's label in the page's language; an unknown code as words."""
    return _choice_labels(choices, get_language()).get(code) or display.humanise(code)


@functools.lru_cache(maxsize=256)
def _field_labels(field: Field, language: str | None) -> dict[str, str]:
    return {value: str(label) for value, label in field.flatchoices}


@register.filter
def label_of(obj: Model, field_name: str) -> str:
    """What obj.get_FOO_display says (`{{ batch|label_of:"status" }}`), the field's labels
    translated once per language rather than on every row (see _choice_labels)."""
    field = obj._meta.get_field(field_name)
    code = getattr(obj, field.attname)
    return _field_labels(field, get_language()).get(code) or display.humanise(code)


@functools.lru_cache(maxsize=8)
def _progress_words(language: str | None) -> tuple[dict[str, str], str, str, str, str]:
    """The progress bars' words in `language`, the active one: looked up once per language, not
    five times per step of each of dozens of batches."""
    return (
        _choice_labels(StationKind, language),
        _("%(step)s: %(passed)s passed, %(failed)s failed, %(waiting)s waiting of %(total)s"),
        _("%(n)s pass"),
        _("%(n)s fail"),
        _("%(n)s waiting"),
    )


def _percent(value: float) -> str:
    """A bar's width: one decimal, a point whatever the language (CSS reads it)."""
    return str(Decimal(repr(value)).quantize(Decimal("0.1"), ROUND_HALF_UP))


@register.filter
def age(since: datetime | None) -> str:
    """How long ago, compactly: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    if since is None:
        return ""
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(min)d min") % {"min": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        if minutes:
            return _("%(h)d h %(min)d min") % {"h": hours, "min": minutes}
        return _("%(h)d h") % {"h": hours}
    days, hours = divmod(hours, 24)
    if hours:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    return _("%(d)d d") % {"d": days}


@register.filter
def ago(since: datetime | None) -> str:
    """How long ago, as a phrase in the page's language: "12 min ago" / "12 分前"."""
    if since is None:
        return ""
    return _("%(age)s ago") % {"age": age(since)}


@register.filter
def when(moment: datetime | date | None, precision: str = "") -> str:
    """A moment in the plant's time zone with the zone named: 2026-11-30 09:15 JST.
    `precision`: "" to the minute, "s" to the second, "time" the time of day only.
    A date (no time of day) prints as the date alone."""
    if moment is None or moment == "":
        return "–"
    if not isinstance(moment, datetime):
        return moment.isoformat() if isinstance(moment, date) else str(moment)
    plant = ZoneInfo(settings.TIME_ZONE)
    local = timezone.localtime(moment, plant) if timezone.is_aware(moment) else moment
    return f"{local.strftime(_WHEN_FORMATS.get(precision, _WHEN_FORMATS['']))} {local.tzname()}"


def _rounded(value: Decimal | float | int, places: int) -> Decimal:
    """Rounded half up to `places` decimals: number_format cuts the digits it does not show."""
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@register.simple_tag
def plant_zone() -> str:
    """The plant's zone abbreviation now (JST), for column headers that name it once."""
    return timezone.localtime(timezone.now(), ZoneInfo(settings.TIME_ZONE)).tzname() or ""


@register.filter
def money(amount: Decimal | float | int | None, currency: str = "") -> str:
    """An amount in a currency (else the plant's), grouped per the page's locale: ¥12,345 or
    $1,234.56."""
    if amount is None or amount == "":
        return "–"
    currency = currency or settings.PLANT_CURRENCY
    symbol, places = _CURRENCIES.get(str(currency).upper(), (f"{currency} ", 2))
    text = formats.number_format(
        _rounded(amount, places), decimal_pos=places, use_l10n=True, force_grouping=True
    )
    if text.startswith("-"):
        return f"-{symbol}{text[1:]}"
    return f"{symbol}{text}"


@register.filter
def quantity(value: Decimal | float | int | None, places: int | None = None) -> str:
    """A count or quantity with the locale's grouping: 12,345 (and `places` decimals if given)."""
    if value is None or value == "":
        return "–"
    if places is not None:
        value = _rounded(value, places)
    return formats.number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)


@register.filter
def measurement_label(name: str) -> str:
    """A measurement or parameter's display name in the page's language (lines/display.py)."""
    return display.label(name)


@register.filter
def unit_label(code: str | None) -> str:
    """A unit as printed: degC -> °C, um -> µm, MOhm -> MΩ."""
    return display.unit(code)


@register.filter
def percent(value: float | Decimal | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.8584 -> 85.8 %."""
    if value is None or value == "":
        return "–"
    shown = formats.number_format(
        _rounded(100 * Decimal(str(value)), digits), decimal_pos=digits, use_l10n=True
    )
    return f"{shown} %"


@register.filter
def measured(value: float | None, name: str) -> str:
    """A measured value as engineers read it: as a percentage for the fractions they think of
    as one (ICE 0.8584 -> 85.8 %), else to 4 significant figures."""
    if value is None:
        return "–"
    if display.is_percent(name):
        return percent(value)
    return num(value)


@register.filter
def measured_unit(unit_code: str | None, name: str) -> str:
    """The unit beside a measured value: none for a fraction shown as a percentage."""
    return "" if display.is_percent(name) else display.unit(unit_code)


@register.filter
def cells(count: int) -> str:
    """ "1 cell" / "12 cells" in the page's language."""
    return ngettext("%(count)s cell", "%(count)s cells", count or 0) % {"count": count or 0}


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
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) or "–"


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key) if mapping else None


@register.filter
def window_pairs(summary: object) -> list[tuple[str, object]]:
    """A line summary's two windows with their labels, for one loop in the template."""
    return [(_("Today"), summary.today), (_("This week"), summary.week)]


@register.filter
def words(code: str) -> str:
    """A machine code as words: hold_opened -> hold opened."""
    return str(code).replace("_", " ")


@register.filter
def excursion_zone(code: str) -> str:
    """The zone of an excursion's hold target (lines.models.Excursion.code: ZONE-X<number>)."""
    return code.rpartition("-X")[0]


@register.filter
def station_kind_label(code: str) -> str:
    """A route step's kind (a StationKind code, e.g. in a disposition plan) as its label."""
    return choice_label(StationKind, code)


@register.filter
def disposition_label(code: str) -> str:
    return choice_label(Hold.Disposition, code)


_LIMIT_FIELDS = {
    "target": gettext_lazy("target"),
    "min": gettext_lazy("min"),
    "max": gettext_lazy("max"),
    "unit": gettext_lazy("unit"),
    "required": gettext_lazy("required"),
}


@register.filter
def limit_field(field: str) -> str:
    """A recipe parameter's field in a diff (target, min, max...) in the page's language."""
    return str(_LIMIT_FIELDS.get(field, display.humanise(field)))


# The audit trail's verbs as the timelines read them; a verb not listed reads as its words.
EVENT_LABELS = {
    "batch_created": gettext_lazy("batch created"),
    "batch_in_progress": gettext_lazy("batch started"),
    "batch_completed": gettext_lazy("batch completed"),
    "batch_cancelled": gettext_lazy("batch cancelled"),
    "batch_regraded": gettext_lazy("batch regraded"),
    "cell_graded": gettext_lazy("cell graded"),
    "cell_joined_hold": gettext_lazy("cell joined a hold"),
    "cell_released": gettext_lazy("cell released"),
    "cell_rework": gettext_lazy("cell sent to rework"),
    "cell_scrapped": gettext_lazy("cell scrapped"),
    "deviation_accepted": gettext_lazy("deviation accepted"),
    "hold_opened": gettext_lazy("hold opened"),
    "hold_closed": gettext_lazy("hold closed"),
    "hold_closing_requested": gettext_lazy("hold closing requested"),
    "hold_rule_put_in_force": gettext_lazy("hold rule put in force"),
    "hold_rule_superseded": gettext_lazy("hold rule superseded"),
    "lot_status_changed": gettext_lazy("lot status changed"),
    "step_recorded": gettext_lazy("step recorded"),
    "ncr_opened": gettext_lazy("NCR opened"),
    "ncr_edited": gettext_lazy("NCR edited"),
    "ncr_contained": gettext_lazy("NCR contained"),
    "ncr_analysed": gettext_lazy("root cause found"),
    "ncr_root_cause_revised": gettext_lazy("root cause revised"),
    "ncr_actions": gettext_lazy("actions under way"),
    "ncr_action_added": gettext_lazy("action added"),
    "ncr_action_done": gettext_lazy("action done"),
    "ncr_actions_reopened": gettext_lazy("back to actions"),
    "ncr_verification": gettext_lazy("NCR verified"),
    "ncr_closed": gettext_lazy("NCR closed and signed"),
    "ncr_cancelled": gettext_lazy("NCR cancelled"),
    "ncr_hold_added": gettext_lazy("hold added to the containment"),
    "ncr_hold_removed": gettext_lazy("hold removed from the containment"),
    "recipe_version_created": gettext_lazy("recipe version created"),
    "recipe_version_released": gettext_lazy("recipe version released"),
    "spc_baseline_frozen": gettext_lazy("SPC limits frozen"),
    "spc_setting_changed": gettext_lazy("SPC rules changed"),
}


@register.filter
def event_label(verb: str) -> str:
    """An audit verb as words in the page's language: hold_opened -> hold opened / 保留開始."""
    return _event_labels(get_language()).get(str(verb)) or words(verb)


@functools.lru_cache(maxsize=8)
def _event_labels(language: str | None) -> dict[str, str]:
    return {verb: str(label) for verb, label in EVENT_LABELS.items()}


@register.filter
def actor_label(actor: object) -> str:
    """Who did it: a person's user name as it is; a hold rule's label (rule:out_of_spec@v1) as
    "rule out_of_spec v1"."""
    text = str(actor)
    if text.startswith("rule:") and "@v" in text:
        code, _at, version = text[len("rule:") :].rpartition("@v")
        return _("rule %(code)s v%(version)s") % {"code": code, "version": version}
    return text


@register.filter
def rule_label(code: str) -> str:
    """A hold rule's label in the page's language (quality.rules); its code if none declares it."""
    declared = RULES.get(code)
    return str(declared.label) if declared else code


@register.filter
def equipment_status_label(status: str) -> str:
    """An equipment status code (a lockout's, stored without choices) as its label."""
    return choice_label(Equipment.Status, status)


@register.filter
def verdict_label(verdict: str) -> str:
    """A run's verdict code (pass, fail) as its label in the page's language."""
    return choice_label(ProcessRun.Verdict, verdict)


@register.filter
def station_state_label(state: str) -> str:
    """A station state code (running, down...) as its label in the page's language."""
    return choice_label(Station.State, state)


@register.filter
def downtime_category_label(category: str | None) -> str:
    """A downtime reason's category code (planned, unplanned) as its label; – for none."""
    if not category:
        return "–"
    return choice_label(DowntimeReason.Category, category)


@register.filter
def hold_scope_label(scope: str) -> str:
    return choice_label(Hold.Scope, scope)


# What a hold names, linked to its page where it has one: (URL name, the target's part in the
# URL, the place on the page).
_HOLD_TARGET_PAGES = {
    Hold.Scope.BATCH: ("batch", str, ""),
    Hold.Scope.CELL: ("cell", str, ""),
    Hold.Scope.LOT: ("lot", str, ""),
    Hold.Scope.EXCURSION: ("zone", excursion_zone, "#excursions"),
}


@register.simple_tag
def hold_scope(hold: Hold) -> SafeString:
    """A hold's scope badge and what it names, linked where it has a page (an excursion's is
    its zone's excursions). A tag, not an included template: lists show up to a hundred holds,
    and each include is a template rendered again."""
    target = html.escape(hold.target)
    badge = f'<span class="badge b-idle">{html.escape(hold_scope_label(hold.scope))}</span>\n'
    page = _HOLD_TARGET_PAGES.get(hold.scope)
    if page is None:
        return mark_safe(f'{badge}<span class="mono">{target}</span>')
    name, part, anchor = page
    url = html.escape(reverse(name, args=[part(hold.target)]) + anchor)
    return mark_safe(f'{badge}<a href="{url}" class="mono">{target}</a>')


@register.simple_tag
def opened_by(hold: Hold) -> SafeString:
    """Who opened a hold: its rule (code, version, label on hover) or the person. The rule and
    the person are selected with the hold (batches.selectors.holds_with_details)."""
    if hold.rule_id:
        code, word = html.escape(hold.rule.code), html.escape(_("rule"))
        return mark_safe(
            f'<span title="{html.escape(rule_label(hold.rule.code))}">{word}'
            f" <code>{code}</code> v{int(hold.rule.version)}</span>"
        )
    return mark_safe(html.escape(hold.opened_by.get_username()) if hold.opened_by_id else "")


@register.filter
def is_percent(name: str) -> bool:
    """Whether a parameter is a fraction read as a percentage (lines/display.py)."""
    return display.is_percent(name)


@register.filter
def limit_for(value: object, name: str) -> str:
    """A recipe limit of parameter `name`: a fraction read as a percentage as one (0.8 -> 80 %),
    anything else as limit_value prints it."""
    if display.is_percent(name) and isinstance(value, int | float) and not isinstance(value, bool):
        shown = f"{100 * value:.2f}".rstrip("0").rstrip(".")
        return f"{shown} %"
    return limit_value(value)
