"""SPC's state changes: freezing control limits (phase II) and setting a parameter's rules.

Each writes a new version (nothing is ever updated) and an audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from audit.services import record_event
from core.errors import DomainError, require_reason
from core.locks import lock_names
from lines.models import Line
from quality.selection import Selection
from quality.spc import statistics
from quality.spc.models import SpcBaseline, SpcSetting
from quality.spc.selectors import spc_chart


def _subject(line: Line, step: str, parameter: str) -> str:
    return f"{line.code}/{step}/{parameter}"


def _next_version(model: type, **key: Any) -> int:
    # Serialised per parameter: two freezes at once would otherwise both read the same maximum.
    lock_names([f"{model._meta.label}:{'/'.join(str(v) for v in key.values())}"])
    latest = model.objects.filter(**key).aggregate(latest=Max("version"))["latest"]
    return (latest or 0) + 1


@transaction.atomic
def freeze_baseline(
    *,
    line: Line,
    step: str,
    parameter: str,
    chart: str,
    since: datetime,
    until: datetime,
    by: Any,
    note: str,
    subgroup: str = "",
) -> SpcBaseline:
    """Freeze the center and sigma within of `parameter`'s points at `step` of `line` between
    `since` and `until` as the next baseline version: from now on its charts of that type take
    their limits from it (phase II). Refused where the period has fewer than two points (or
    subgroups) or no spread."""
    require_reason(note)
    if chart not in statistics.CHARTS:
        raise DomainError(
            "invalid",
            _("No chart %(chart)s.") % {"chart": chart},
            status=400,
            errors={"chart": [chart]},
        )
    if since >= until:
        raise DomainError(
            "invalid", _("The period is empty."), status=400, errors={"until": ["After since."]}
        )
    period = Selection(line=line, step=step, since=since, until=until)
    # Phase I over the period itself, never the limits of an earlier baseline.
    computed = spc_chart(period, parameter, kind=chart, subgroup=subgroup, rules=())
    figures = computed.chart
    if figures.sigma_within is None or figures.sigma_within <= 0:
        raise DomainError(
            "invalid",
            (
                _(
                    "The period has %(n)s values of %(parameter)s (no spread): "
                    "no limits can be frozen."
                )
                if figures.n >= 2
                else _(
                    "The period has %(n)s values of %(parameter)s (too few): "
                    "no limits can be frozen."
                )
            )
            % {"n": figures.n, "parameter": parameter},
            status=400,
            errors={"since": ["Choose a period with at least two points that vary."]},
        )
    key = dict(line=line, step=step, parameter=parameter, chart=chart)
    baseline = SpcBaseline.objects.create(
        **key,
        version=_next_version(SpcBaseline, **key),
        center=figures.mean,
        sigma_within=figures.sigma_within,
        subgroup=computed.subgroup,
        n=figures.n,
        since=since,
        until=until,
        note=note,
        frozen_by=by,
    )
    record_event(
        actor=by,
        verb="spc_baseline_frozen",
        subject_type="spc_parameter",
        subject=_subject(line, step, parameter),
        reason=note,
        data={
            "chart": chart,
            "version": baseline.version,
            "center": baseline.center,
            "sigma_within": baseline.sigma_within,
            "n": baseline.n,
            "subgroup": baseline.subgroup,
            "since": since.isoformat(),
            "until": until.isoformat(),
        },
    )
    return baseline


@transaction.atomic
def withdraw_baseline(
    *, line: Line, step: str, parameter: str, chart: str, by: Any, note: str
) -> SpcBaseline:
    """Back to limits from the selected points (phase I): a version that withdraws the limits."""
    require_reason(note)
    key = dict(line=line, step=step, parameter=parameter, chart=chart)
    baseline = SpcBaseline.objects.create(
        **key, version=_next_version(SpcBaseline, **key), withdrawn=True, note=note, frozen_by=by
    )
    record_event(
        actor=by,
        verb="spc_baseline_withdrawn",
        subject_type="spc_parameter",
        subject=_subject(line, step, parameter),
        reason=note,
        data={"chart": chart, "version": baseline.version},
    )
    return baseline


@transaction.atomic
def set_spc_setting(
    *,
    line: Line,
    step: str,
    parameter: str,
    rules: Iterable[int],
    hold: bool,
    by: Any,
    note: str,
) -> SpcSetting:
    """Choose the Nelson rules judged on `parameter` and whether their signals hold the cell
    (the spc_signal hold rule) or only flag it, as the parameter's next settings version."""
    require_reason(note)
    rules = sorted(set(rules))
    wrong = [r for r in rules if r not in statistics.NELSON_RULES]
    if wrong:
        raise DomainError(
            "invalid",
            _("Nelson's rules are numbered 1 to 8."),
            status=400,
            errors={"rules": [f"No rule {r}." for r in wrong]},
        )
    key = dict(line=line, step=step, parameter=parameter)
    setting = SpcSetting.objects.create(
        **key,
        version=_next_version(SpcSetting, **key),
        rules=rules,
        hold=hold,
        note=note,
        set_by=by,
    )
    record_event(
        actor=by,
        verb="spc_setting_changed",
        subject_type="spc_parameter",
        subject=_subject(line, step, parameter),
        reason=note,
        data={"version": setting.version, "rules": rules, "hold": hold},
    )
    return setting
