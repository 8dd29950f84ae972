"""The comparison of an experiment's arms on one measured feature. Pure numbers: no database.

Per arm: n, mean, sample standard deviation (n - 1), the 95 % confidence interval of the mean
from Student's t, and the five numbers of a box plot. Between arms: Welch's t-test (unequal
variances) for two arms with Cohen's d (pooled SD) and Hedges' g (d corrected for small samples,
Hedges & Olkin's 1 - 3 / (4 (n1 + n2) - 9)); one-way ANOVA for more with eta squared (the share of
the total sum of squares between arms). For a factorial design, each factor's main effect (the
mean of every cell at each level, pooled over the other factors) and the means of the first two
factors' level combinations (the interaction plot).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats


@dataclass
class ArmSummary:
    arm: str
    levels: dict[str, Any]
    n: int
    mean: float | None = None
    sd: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min: float | None = None
    q1: float | None = None
    median: float | None = None
    q3: float | None = None
    max: float | None = None
    values: list[float] = field(default_factory=list)


@dataclass
class Comparison:
    test: str  # "welch_t", "anova", or "" with too few values
    statistic: float | None = None
    df: float | None = None
    p_value: float | None = None
    cohens_d: float | None = None
    hedges_g: float | None = None
    eta_squared: float | None = None


@dataclass
class LevelMean:
    level: Any
    n: int
    mean: float | None


@dataclass
class Results:
    arms: list[ArmSummary]
    comparison: Comparison
    main_effects: dict[str, list[LevelMean]]
    # (first factor's level, second factor's level) -> mean, as rows per second-factor level
    interaction: dict[str, Any] | None


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def summarise(arm: str, levels: dict[str, Any], values: Sequence[float]) -> ArmSummary:
    data = np.asarray(values, dtype=float)
    summary = ArmSummary(arm=arm, levels=levels, n=len(data), values=[float(v) for v in data])
    if not len(data):
        return summary
    summary.mean = float(data.mean())
    summary.min, summary.q1, summary.median, summary.q3, summary.max = (
        float(v) for v in np.percentile(data, [0, 25, 50, 75, 100])
    )
    if len(data) > 1:
        summary.sd = float(data.std(ddof=1))
        half = stats.t.ppf(0.975, len(data) - 1) * summary.sd / math.sqrt(len(data))
        summary.ci_low, summary.ci_high = summary.mean - half, summary.mean + half
    return summary


def compare(groups: Sequence[Sequence[float]]) -> Comparison:
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if len(groups) < 2 or any(len(g) < 2 for g in groups):
        return Comparison(test="")
    if len(groups) == 2:
        a, b = groups
        t, p = stats.ttest_ind(a, b, equal_var=False)
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if va + vb else None
        pooled = math.sqrt(
            ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
        )
        d = (a.mean() - b.mean()) / pooled if pooled else None
        g = d * (1 - 3 / (4 * (len(a) + len(b)) - 9)) if d is not None else None
        return Comparison(
            "welch_t",
            _finite(t),
            _finite(df) if df else None,
            _finite(p),
            _finite(d) if d is not None else None,
            _finite(g) if g is not None else None,
        )
    f, p = stats.f_oneway(*groups)
    everything = np.concatenate(groups)
    grand = everything.mean()
    between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    total = ((everything - grand) ** 2).sum()
    return Comparison(
        "anova",
        _finite(f),
        float(len(groups) - 1),
        _finite(p),
        eta_squared=_finite(between / total) if total else None,
    )


def results(
    arms: Sequence[tuple[str, dict[str, Any]]],
    values: Mapping[str, Sequence[float]],
    factors: Sequence[tuple[str, Sequence[Any]]],
    factorial: bool,
) -> Results:
    """`arms`: (code, factor -> level) in order; `values`: arm code -> the cells' values;
    `factors`: (name, levels) in order."""
    summaries = [summarise(code, levels, values.get(code, [])) for code, levels in arms]
    comparison = compare([s.values for s in summaries])
    main_effects: dict[str, list[LevelMean]] = {}
    interaction = None
    if factorial:
        for name, levels in factors:
            main_effects[name] = []
            for level in levels:
                pooled = [v for s in summaries if s.levels[name] == level for v in s.values]
                main_effects[name].append(
                    LevelMean(level, len(pooled), float(np.mean(pooled)) if pooled else None)
                )
        if len(factors) >= 2:
            (first, first_levels), (second, second_levels) = factors[0], factors[1]
            rows = []
            for level2 in second_levels:
                means = []
                for level1 in first_levels:
                    pooled = [
                        v
                        for s in summaries
                        if s.levels[first] == level1 and s.levels[second] == level2
                        for v in s.values
                    ]
                    means.append(float(np.mean(pooled)) if pooled else None)
                rows.append({"level": level2, "means": means})
            interaction = {
                "x": first,
                "x_levels": list(first_levels),
                "lines": second,
                "rows": rows,
            }
    return Results(summaries, comparison, main_effects, interaction)
