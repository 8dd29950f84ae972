"""Control charts, Nelson's rules and capability indices, by the textbook (AIAG SPC manual,
2nd ed.; Montgomery, Introduction to Statistical Quality Control, appendix VI). Pure numbers: no
database, no Django, so a chart of any origin (the API, a page, a hold rule, a bench) is computed
the same way.

Subgroups of unequal size (a press cycle of 4 cells beside one of 6) get limits of their own:
sigma within is the mean of each subgroup's unbiased estimate (R_i / d2(n_i) or s_i / c4(n_i)),
and subgroup i's limits are center +- 3 sigma / sqrt(n_i), its R (S) chart's d2(n_i) sigma
(c4(n_i) sigma) with D3/D4 (B3/B4) of n_i. With equal sizes this is exactly Rbar/d2, A2 Rbar,
D4 Rbar (Sbar/c4, A3 Sbar, B4 Sbar). Nelson's rules then judge each point against its own
limits. A subgroup of one cell has no range or deviation and is left out (and counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Constants:
    """The control-chart constants of one subgroup size."""

    n: int
    A2: float
    A3: float
    c4: float
    B3: float
    B4: float
    d2: float
    d3: float
    D3: float
    D4: float


# Montgomery, appendix VI (the AIAG manual prints the same values to its precision).
# n: A2, A3, c4, B3, B4, d2, d3, D3, D4
_TABLE = """
2  1.880 2.659 0.7979 0     3.267 1.128 0.853 0     3.267
3  1.023 1.954 0.8862 0     2.568 1.693 0.888 0     2.574
4  0.729 1.628 0.9213 0     2.266 2.059 0.880 0     2.282
5  0.577 1.427 0.9400 0     2.089 2.326 0.864 0     2.114
6  0.483 1.287 0.9515 0.030 1.970 2.534 0.848 0     2.004
7  0.419 1.182 0.9594 0.118 1.882 2.704 0.833 0.076 1.924
8  0.373 1.099 0.9650 0.185 1.815 2.847 0.820 0.136 1.864
9  0.337 1.032 0.9693 0.239 1.761 2.970 0.808 0.184 1.816
10 0.308 0.975 0.9727 0.284 1.716 3.078 0.797 0.223 1.777
11 0.285 0.927 0.9754 0.321 1.679 3.173 0.787 0.256 1.744
12 0.266 0.886 0.9776 0.354 1.646 3.258 0.778 0.283 1.717
13 0.249 0.850 0.9794 0.382 1.618 3.336 0.770 0.307 1.693
14 0.235 0.817 0.9810 0.406 1.594 3.407 0.763 0.328 1.672
15 0.223 0.789 0.9823 0.428 1.572 3.472 0.756 0.347 1.653
16 0.212 0.763 0.9835 0.448 1.552 3.532 0.750 0.363 1.637
17 0.203 0.739 0.9845 0.466 1.534 3.588 0.744 0.378 1.622
18 0.194 0.718 0.9854 0.482 1.518 3.640 0.739 0.391 1.608
19 0.187 0.698 0.9862 0.497 1.503 3.689 0.734 0.403 1.597
20 0.180 0.680 0.9869 0.510 1.490 3.735 0.729 0.415 1.585
21 0.173 0.663 0.9876 0.523 1.477 3.778 0.724 0.425 1.575
22 0.167 0.647 0.9882 0.534 1.466 3.819 0.720 0.434 1.566
23 0.162 0.633 0.9887 0.545 1.455 3.858 0.716 0.443 1.557
24 0.157 0.619 0.9892 0.555 1.445 3.895 0.712 0.451 1.548
25 0.153 0.606 0.9896 0.565 1.435 3.931 0.708 0.459 1.541
"""

CONSTANTS: dict[int, Constants] = {
    int(row[0]): Constants(int(row[0]), *map(float, row[1:]))
    for row in (line.split() for line in _TABLE.strip().splitlines())
}
MIN_SUBGROUP, MAX_SUBGROUP = min(CONSTANTS), max(CONSTANTS)
D2_MOVING_RANGE = CONSTANTS[2].d2  # 1.128: a moving range is the range of two consecutive points
D4_MOVING_RANGE = CONSTANTS[2].D4  # 3.267

IMR, XBAR_R, XBAR_S = "imr", "xbar_r", "xbar_s"
CHARTS = (IMR, XBAR_R, XBAR_S)

# Nelson's eight rules (J. Qual. Technol. 16(4), 1984), in the contract's words.
NELSON_RULES: dict[int, str] = {
    1: "one point beyond 3 sigma",
    2: "nine in a row on one side of the center",
    3: "six in a row rising or falling",
    4: "fourteen in a row alternating up and down",
    5: "two of three beyond 2 sigma on one side",
    6: "four of five beyond 1 sigma on one side",
    7: "fifteen in a row within 1 sigma",
    8: "eight in a row beyond 1 sigma on either side",
}
ALL_RULES = tuple(NELSON_RULES)


def c4_of(n: int) -> float:
    """c4 of any subgroup size (the table's where it has one): E[s] = c4 sigma for normal data.
    X-bar S charts of natural subgroups (a batch) may be larger than the table's 25."""
    if n in CONSTANTS:
        return CONSTANTS[n].c4
    return math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


@dataclass(frozen=True)
class Baseline:
    """Phase II: the center and sigma within frozen from an earlier, in-control period."""

    center: float
    sigma_within: float


@dataclass
class RangeChart:
    """The moving range (I-MR), range (X-bar R) or standard deviation (X-bar S) chart."""

    points: list[float]
    center: float | None = None
    ucl: float | None = None
    lcl: float | None = None
    # Per point, where subgroup sizes differ (else None: the scalars hold for every point).
    point_centers: list[float] | None = None
    point_ucls: list[float] | None = None
    point_lcls: list[float] | None = None


@dataclass
class Chart:
    """A control chart with its capability figures. Figures are None where they cannot be
    computed: fewer than two points, a zero sigma, a missing specification limit."""

    chart: str
    n: int  # individual values charted
    values: list[float]  # the plotted statistic: each value (I-MR) or each subgroup's mean
    signals: list[list[int]]  # per point, the numbers of the Nelson rules it completes
    range: RangeChart
    sizes: list[int] | None = None  # per subgroup (X-bar)
    dropped: int = 0  # subgroups of a single value left out (X-bar)
    mean: float | None = None
    center: float | None = None
    ucl: float | None = None
    lcl: float | None = None
    sigma_within: float | None = None
    sigma_overall: float | None = None
    lsl: float | None = None
    usl: float | None = None
    cp: float | None = None
    cpk: float | None = None
    pp: float | None = None
    ppk: float | None = None
    point_ucls: list[float] | None = None  # per subgroup, where sizes differ
    point_lcls: list[float] | None = None
    baseline: Baseline | None = None
    rules: tuple[int, ...] = field(default=ALL_RULES)

    @property
    def subgroups(self) -> int | None:
        return None if self.sizes is None else len(self.sizes)


# ---------------------------------------------------------------- capability


def capability(
    mean: float | None, sigma: float | None, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    """(Cp, Cpk) of a process of `mean` and `sigma` against the specification limits; Cp is None
    unless both limits exist, Cpk is the one-sided index where only one does."""
    if mean is None or not sigma or (lsl is None and usl is None):
        return None, None
    cp = (usl - lsl) / (6 * sigma) if lsl is not None and usl is not None else None
    sides = []
    if usl is not None:
        sides.append((usl - mean) / (3 * sigma))
    if lsl is not None:
        sides.append((mean - lsl) / (3 * sigma))
    return cp, min(sides)


def sample_std(values: Sequence[float]) -> float | None:
    """The sample standard deviation (n - 1), None for fewer than two values."""
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


# ---------------------------------------------------------------- charts


def imr_chart(
    values: Sequence[float],
    *,
    lsl: float | None = None,
    usl: float | None = None,
    rules: Iterable[int] = ALL_RULES,
    baseline: Baseline | None = None,
) -> Chart:
    """Individuals and moving range: sigma within = mean moving range / d2(2)."""
    x = np.asarray(values, dtype=float)
    moving_ranges = np.abs(np.diff(x)) if len(x) >= 2 else np.empty(0)
    chart = Chart(
        chart=IMR,
        n=len(x),
        values=x.tolist(),
        signals=[[] for _ in range(len(x))],
        range=RangeChart(points=moving_ranges.tolist()),
        lsl=lsl,
        usl=usl,
        rules=tuple(sorted(set(rules))),
    )
    if len(x) < 2:
        return chart
    chart.mean = float(x.mean())
    chart.sigma_within = float(moving_ranges.mean()) / D2_MOVING_RANGE
    chart.sigma_overall = sample_std(x)
    _capability(chart)
    limits = baseline or Baseline(chart.mean, chart.sigma_within)
    chart.baseline = baseline
    chart.center = limits.center
    chart.ucl = limits.center + 3 * limits.sigma_within
    chart.lcl = limits.center - 3 * limits.sigma_within
    mr_bar = D2_MOVING_RANGE * limits.sigma_within
    chart.range.center, chart.range.ucl, chart.range.lcl = mr_bar, D4_MOVING_RANGE * mr_bar, 0.0
    sigmas = np.full(len(x), limits.sigma_within)
    chart.signals = nelson_signals(x, limits.center, sigmas, chart.rules)
    return chart


def xbar_chart(
    subgroups: Sequence[Sequence[float]],
    *,
    kind: str = XBAR_R,
    lsl: float | None = None,
    usl: float | None = None,
    rules: Iterable[int] = ALL_RULES,
    baseline: Baseline | None = None,
) -> Chart:
    """X-bar with R (`xbar_r`) or S (`xbar_s`) by subgroup; see the module for unequal sizes.
    X-bar R takes subgroups of 2 to 25 values (ValueError otherwise: the table ends there and the
    range wastes a larger subgroup's information); X-bar S any size from 2."""
    if kind not in (XBAR_R, XBAR_S):
        raise ValueError(f"{kind!r} is not an X-bar chart")
    kept = [np.asarray(group, dtype=float) for group in subgroups if len(group) >= 2]
    dropped = len(subgroups) - len(kept)
    sizes = [len(group) for group in kept]
    if kind == XBAR_R and any(size > MAX_SUBGROUP for size in sizes):
        raise ValueError(
            f"X-bar R takes subgroups of at most {MAX_SUBGROUP} values "
            f"(the largest here has {max(sizes)}); use X-bar S"
        )
    means = np.array([group.mean() for group in kept])
    if kind == XBAR_R:
        spreads = np.array([np.ptp(group) for group in kept])
        unbias = np.array([CONSTANTS[size].d2 for size in sizes])
    else:
        spreads = np.array([group.std(ddof=1) for group in kept])
        unbias = np.array([c4_of(size) for size in sizes])
    everything = np.concatenate(kept) if kept else np.empty(0)
    chart = Chart(
        chart=kind,
        n=len(everything),
        values=means.tolist(),
        signals=[[] for _ in kept],
        range=RangeChart(points=spreads.tolist()),
        sizes=sizes,
        dropped=dropped,
        lsl=lsl,
        usl=usl,
        rules=tuple(sorted(set(rules))),
    )
    if len(kept) < 2:
        return chart
    chart.mean = float(everything.mean())
    chart.sigma_within = float(np.mean(spreads / unbias))
    chart.sigma_overall = sample_std(everything)
    _capability(chart)
    limits = baseline or Baseline(chart.mean, chart.sigma_within)
    chart.baseline = baseline
    sigma = limits.sigma_within
    root_n = np.sqrt(np.array(sizes, dtype=float))
    ucls, lcls = limits.center + 3 * sigma / root_n, limits.center - 3 * sigma / root_n
    if kind == XBAR_R:
        centers = unbias * sigma  # d2(n) sigma = Rbar for equal sizes
        upper = np.array([CONSTANTS[size].D4 for size in sizes]) * centers
        lower = np.array([CONSTANTS[size].D3 for size in sizes]) * centers
    else:
        centers = unbias * sigma  # c4(n) sigma = Sbar for equal sizes
        upper = np.array([_b(size)[1] for size in sizes]) * centers
        lower = np.array([_b(size)[0] for size in sizes]) * centers
    reference = _reference_size(sizes)
    at = sizes.index(reference)
    chart.center = limits.center
    chart.ucl, chart.lcl = float(ucls[at]), float(lcls[at])
    chart.range.center, chart.range.ucl = float(centers[at]), float(upper[at])
    chart.range.lcl = float(lower[at])
    if len(set(sizes)) > 1:
        chart.point_ucls, chart.point_lcls = ucls.tolist(), lcls.tolist()
        chart.range.point_centers = centers.tolist()
        chart.range.point_ucls, chart.range.point_lcls = upper.tolist(), lower.tolist()
    chart.signals = nelson_signals(means, limits.center, sigma / root_n, chart.rules)
    return chart


def _b(n: int) -> tuple[float, float]:
    """B3 and B4 of any subgroup size (from c4 beyond the table)."""
    if n in CONSTANTS:
        return CONSTANTS[n].B3, CONSTANTS[n].B4
    c4 = c4_of(n)
    spread = 3 * math.sqrt(1 - c4 * c4) / c4
    return max(0.0, 1 - spread), 1 + spread


def _reference_size(sizes: list[int]) -> int:
    """The subgroup size whose limits the chart reports as its own: the most common one (the
    larger on a tie)."""
    counts: dict[int, int] = {}
    for size in sizes:
        counts[size] = counts.get(size, 0) + 1
    return max(counts, key=lambda size: (counts[size], size))


def _capability(chart: Chart) -> None:
    chart.cp, chart.cpk = capability(chart.mean, chart.sigma_within, chart.lsl, chart.usl)
    chart.pp, chart.ppk = capability(chart.mean, chart.sigma_overall, chart.lsl, chart.usl)


# ---------------------------------------------------------------- Nelson's rules


def nelson_signals(
    values: Sequence[float] | np.ndarray,
    center: float,
    sigmas: Sequence[float] | np.ndarray,
    rules: Iterable[int] = ALL_RULES,
) -> list[list[int]]:
    """For each point, the numbers of the selected rules whose pattern it completes.

    `sigmas` is each point's own sigma (of the plotted statistic). A run longer than its rule's
    length flags each of its later points too. Beyond means strictly beyond (|z| > k); within
    1 sigma is the rest (|z| <= 1). A point on the center line is on neither side. With a zero
    sigma only the rules that need no zones (2, 3, 4) are judged.

    Each rule is a whole-array expression (runs and windows counted with cumulative sums), not a
    loop over the points: a chart of 20,000 points is judged in a few milliseconds.
    """
    rules = set(rules)
    x = np.asarray(values, dtype=float)
    s = np.asarray(sigmas, dtype=float)
    count = len(x)
    signals: list[list[int]] = [[] for _ in range(count)]
    if count == 0:
        return signals
    fired: dict[int, np.ndarray] = {}
    side = np.sign(x - center)
    # 2: nine in a row on one side.
    fired[2] = _same_run(side) >= 9
    # 3: six in a row rising or falling (five steps the same way); 4: fourteen in a row
    # alternating (thirteen steps, each turning the other way). Step j is point j + 1's.
    steps = np.sign(np.diff(x))
    nonzero = steps != 0
    turned = np.zeros(len(steps), dtype=bool)
    turned[1:] = nonzero[1:] & nonzero[:-1] & (steps[1:] != steps[:-1])
    fired[3] = np.concatenate(([False], _same_run(steps) >= 5))
    fired[4] = np.concatenate(([False], np.where(nonzero, 1 + _run(turned), 0) >= 13))
    if np.all(s > 0):
        z = (x - center) / s
        fired[1] = np.abs(z) > 3
        fired[5] = _k_of_last(z, 3, 2, 2.0)
        fired[6] = _k_of_last(z, 5, 4, 1.0)
        fired[7] = _run(np.abs(z) <= 1) >= 15
        fired[8] = _run(np.abs(z) > 1) >= 8
    for rule in sorted(rules & fired.keys()):
        for i in np.flatnonzero(fired[rule]).tolist():
            signals[i].append(rule)
    return signals


def _run(condition: np.ndarray) -> np.ndarray:
    """At each point, how many points in a row up to it meet the condition (0 where it fails)."""
    at = np.arange(len(condition))
    last_failed = np.maximum.accumulate(np.where(condition, -1, at))
    return at - last_failed


def _same_run(signs: np.ndarray) -> np.ndarray:
    """At each point, how many points in a row up to it have its sign (0 for a zero sign)."""
    same = np.zeros(len(signs), dtype=bool)
    same[1:] = (signs[1:] != 0) & (signs[1:] == signs[:-1])
    return np.where(signs != 0, 1 + _run(same), 0)


def _k_of_last(z: np.ndarray, window: int, k: int, limit: float) -> np.ndarray:
    """At least `k` of the last `window` points beyond `limit` sigma on the side of the point
    they end at, which is itself beyond: the points that complete the pattern."""

    def in_window(beyond: np.ndarray) -> np.ndarray:
        total = np.concatenate(([0], np.cumsum(beyond)))
        counts = np.zeros(len(beyond), dtype=int)
        if len(beyond) >= window:
            counts[window - 1 :] = total[window:] - total[: len(beyond) - window + 1]
        return counts >= k

    above, below = z > limit, z < -limit
    return (above & in_window(above)) | (below & in_window(below))
