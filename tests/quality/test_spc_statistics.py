"""The control-chart arithmetic against figures worked out by hand, with constants typed from the
published table (Montgomery, appendix VI), never read back from the module under test."""

from __future__ import annotations

import math

import pytest
from scipy import integrate, stats

from quality.spc.statistics import (
    CONSTANTS,
    Baseline,
    capability,
    imr_chart,
    nelson_signals,
    xbar_chart,
)

# ---------------------------------------------------------------- the constants

# n: (A2, A3, c4, B3, B4, d2, d3, D3, D4), typed from the table.
PUBLISHED = {
    2: (1.880, 2.659, 0.7979, 0, 3.267, 1.128, 0.853, 0, 3.267),
    5: (0.577, 1.427, 0.9400, 0, 2.089, 2.326, 0.864, 0, 2.114),
    7: (0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924),
    10: (0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777),
    25: (0.153, 0.606, 0.9896, 0.565, 1.435, 3.931, 0.708, 0.459, 1.541),
}


@pytest.mark.parametrize("n", sorted(PUBLISHED))
def test_constants_are_the_published_ones(n):
    c = CONSTANTS[n]
    assert (c.A2, c.A3, c.c4, c.B3, c.B4, c.d2, c.d3, c.D3, c.D4) == PUBLISHED[n]


def test_every_size_from_2_to_25_agrees_with_the_definitions():
    """A mistyped digit anywhere in the table shows against the normal-theory definitions."""
    assert sorted(CONSTANTS) == list(range(2, 26))
    for n, c in CONSTANTS.items():
        c4 = math.sqrt(2 / (n - 1)) * math.gamma(n / 2) / math.gamma((n - 1) / 2)
        d2, _ = integrate.quad(
            lambda x, n=n: 1 - stats.norm.cdf(x) ** n - (1 - stats.norm.cdf(x)) ** n, -12, 12
        )
        assert c.c4 == pytest.approx(c4, abs=6e-5), n
        assert c.d2 == pytest.approx(d2, abs=6e-4), n
        assert c.A2 == pytest.approx(3 / (d2 * math.sqrt(n)), abs=1.5e-3), n
        assert c.A3 == pytest.approx(3 / (c4 * math.sqrt(n)), abs=1.5e-3), n
        spread_s = 3 * math.sqrt(1 - c4 * c4) / c4
        assert c.B4 == pytest.approx(1 + spread_s, abs=1.5e-3), n
        assert c.B3 == pytest.approx(max(0, 1 - spread_s), abs=1.5e-3), n
        assert c.D4 == pytest.approx(1 + 3 * c.d3 / c.d2, abs=3e-3), n
        assert c.D3 == pytest.approx(max(0, 1 - 3 * c.d3 / c.d2), abs=3e-3), n


# ---------------------------------------------------------------- I-MR


def test_individuals_and_moving_range_by_hand():
    chart = imr_chart([10, 12, 11, 13, 12], lsl=8, usl=16)
    # mean 58/5; moving ranges 2, 1, 2, 1 -> 1.5; sigma within 1.5 / 1.128
    mean, mr_bar = 11.6, 1.5
    sigma = mr_bar / 1.128
    # deviations -1.6 .4 -.6 1.4 .4: squares sum 5.2, over n - 1 = 4
    overall = math.sqrt(5.2 / 4)
    assert chart.n == 5 and chart.range.points == [2, 1, 2, 1]
    assert chart.center == pytest.approx(mean) and chart.mean == pytest.approx(mean)
    assert chart.sigma_within == pytest.approx(sigma)
    assert chart.ucl == pytest.approx(mean + 3 * sigma)
    assert chart.lcl == pytest.approx(mean - 3 * sigma)
    assert chart.range.center == pytest.approx(mr_bar)
    assert chart.range.ucl == pytest.approx(3.267 * mr_bar) and chart.range.lcl == 0
    assert chart.sigma_overall == pytest.approx(overall)
    assert chart.cp == pytest.approx(8 / (6 * sigma))
    assert chart.cpk == pytest.approx(3.6 / (3 * sigma))  # nearer the lower limit
    assert chart.pp == pytest.approx(8 / (6 * overall))
    assert chart.ppk == pytest.approx(3.6 / (3 * overall))
    assert chart.signals == [[], [], [], [], []]


def test_fewer_than_two_points_give_n_and_no_figures():
    for values in ([], [4.2]):
        chart = imr_chart(values, lsl=1, usl=9)
        assert chart.n == len(values)
        figures = (chart.center, chart.ucl, chart.lcl, chart.sigma_within, chart.sigma_overall)
        assert figures == (None,) * 5
        assert (chart.cp, chart.cpk, chart.pp, chart.ppk) == (None,) * 4
        assert chart.range.points == [] and chart.range.center is None


def test_a_constant_parameter_has_zero_sigma_and_no_index():
    chart = imr_chart([2.0, 2.0, 2.0], lsl=1, usl=3)
    assert chart.sigma_within == 0 and chart.sigma_overall == 0
    assert chart.ucl == chart.lcl == chart.center == 2.0
    assert (chart.cp, chart.cpk, chart.pp, chart.ppk) == (None,) * 4
    assert chart.signals == [[], [], []]


def test_phase_two_limits_come_from_the_baseline():
    chart = imr_chart([10, 12, 11, 13, 12], baseline=Baseline(center=10.0, sigma_within=0.5))
    assert chart.center == 10.0 and chart.ucl == 11.5 and chart.lcl == 8.5
    assert chart.range.center == pytest.approx(1.128 * 0.5)
    assert chart.range.ucl == pytest.approx(3.267 * 1.128 * 0.5)
    # the points' own figures stay theirs
    assert chart.mean == pytest.approx(11.6) and chart.sigma_within == pytest.approx(1.5 / 1.128)
    assert 1 in chart.signals[3] and 1 in chart.signals[1]  # 13 and 12 are beyond 11.5


# ---------------------------------------------------------------- X-bar R and S

SUBGROUPS = [[1, 2, 3], [2, 4, 6], [3, 3, 3]]  # means 2, 4, 3; ranges 2, 4, 0; s 1, 2, 0


def test_xbar_r_by_hand():
    chart = xbar_chart(SUBGROUPS, kind="xbar_r", lsl=0, usl=7)
    r_bar, grand = 2.0, 3.0
    sigma = r_bar / 1.693
    assert chart.values == [2, 4, 3] and chart.range.points == [2, 4, 0]
    assert chart.n == 9 and chart.sizes == [3, 3, 3] and chart.dropped == 0
    assert chart.center == pytest.approx(grand)
    assert chart.sigma_within == pytest.approx(sigma)
    assert chart.ucl == pytest.approx(grand + 1.023 * r_bar, abs=1e-3)
    assert chart.lcl == pytest.approx(grand - 1.023 * r_bar, abs=1e-3)
    assert chart.range.center == pytest.approx(r_bar)
    assert chart.range.ucl == pytest.approx(2.574 * r_bar) and chart.range.lcl == 0
    assert chart.cp == pytest.approx(7 / (6 * sigma))
    assert chart.cpk == pytest.approx(3 / (3 * sigma))
    # all nine values: mean 3, squares 4+1+0+1+1+9+0+0+0 = 16 over 8
    assert chart.sigma_overall == pytest.approx(math.sqrt(2))
    assert chart.ppk == pytest.approx(3 / (3 * math.sqrt(2)))
    assert chart.point_ucls is None


def test_xbar_s_by_hand():
    chart = xbar_chart(SUBGROUPS, kind="xbar_s")
    s_bar = 1.0
    assert chart.range.points == pytest.approx([1, 2, 0])
    assert chart.sigma_within == pytest.approx(s_bar / 0.8862)
    assert chart.ucl == pytest.approx(3 + 1.954 * s_bar, abs=1e-3)
    assert chart.range.center == pytest.approx(s_bar)
    assert chart.range.ucl == pytest.approx(2.568 * s_bar) and chart.range.lcl == 0


def test_unequal_subgroups_get_limits_of_their_own_and_singles_are_dropped():
    chart = xbar_chart([[1, 3], [7], [2, 4, 6], [5, 5, 7, 7]], kind="xbar_r")
    assert chart.dropped == 1 and chart.sizes == [2, 3, 4] and chart.n == 9
    # each subgroup's own unbiased estimate: 2/1.128, 4/1.693, 2/2.059, averaged
    sigma = (2 / 1.128 + 4 / 1.693 + 2 / 2.059) / 3
    grand = (1 + 3 + 2 + 4 + 6 + 5 + 5 + 7 + 7) / 9
    assert chart.sigma_within == pytest.approx(sigma)
    assert chart.center == pytest.approx(grand)
    assert chart.point_ucls == pytest.approx([grand + 3 * sigma / math.sqrt(n) for n in (2, 3, 4)])
    assert chart.range.point_ucls == pytest.approx(
        [3.267 * 1.128 * sigma, 2.574 * 1.693 * sigma, 2.282 * 2.059 * sigma]
    )
    # the chart's own limits are those of the most common size (here a tie: the largest)
    assert chart.ucl == pytest.approx(grand + 3 * sigma / 2)


def test_xbar_r_refuses_subgroups_beyond_the_table_and_s_takes_them():
    big = [list(range(30)), list(range(1, 31))]
    with pytest.raises(ValueError, match="at most 25"):
        xbar_chart(big, kind="xbar_r")
    chart = xbar_chart(big, kind="xbar_s")
    c4 = math.sqrt(2 / 29) * math.gamma(15) / math.gamma(14.5)
    assert chart.sigma_within == pytest.approx(math.sqrt(77.5) / c4)  # s of 0..29 is sqrt(77.5)


def test_one_subgroup_is_too_few_for_figures():
    chart = xbar_chart([[1, 2, 3], [4]], kind="xbar_r")
    assert chart.dropped == 1 and chart.n == 3 and chart.center is None and chart.cpk is None


# ---------------------------------------------------------------- capability


def test_capability_two_and_one_sided():
    assert capability(10, 1, 4, 19) == pytest.approx((15 / 6, 6 / 3))
    cp, cpk = capability(10, 2, None, 16)
    assert cp is None and cpk == pytest.approx(6 / 6)
    cp, cpk = capability(10, 2, 7, None)
    assert cp is None and cpk == pytest.approx(3 / 6)
    assert capability(10, 2, None, None) == (None, None)
    assert capability(10, 0, 7, 13) == (None, None)


# ---------------------------------------------------------------- Nelson's rules

UNIT = Baseline(center=0.0, sigma_within=1.0)  # the values are then z scores


def _signals(values, rule):
    return imr_chart(values, rules=[rule], baseline=UNIT).signals


def _flagged(values, rule):
    return [i for i, s in enumerate(_signals(values, rule)) if rule in s]


def test_rule_1_one_point_beyond_three_sigma():
    assert _flagged([0, 0.2, 3.5, 0, -3.2], 1) == [2, 4]
    assert _flagged([0, 2.9, -2.9, 3.0], 1) == []


def test_rule_2_nine_on_one_side_and_a_longer_run_flags_on():
    assert _flagged([0.5] * 10, 2) == [8, 9]
    assert _flagged([-0.5] * 9, 2) == [8]
    assert _flagged([0.5] * 8 + [-0.5] + [0.5] * 8, 2) == []
    assert _flagged([0.5] * 4 + [0.0] + [0.5] * 5, 2) == []  # on the center line: neither side


def test_rule_3_six_rising_or_falling():
    assert _flagged([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3) == [5]
    assert _flagged([0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0], 3) == [5, 6]
    assert _flagged([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6], 3) == []  # a tie breaks it


def test_rule_4_fourteen_alternating():
    zigzag = [0.3 if i % 2 else -0.3 for i in range(14)]
    assert _flagged(zigzag, 4) == [13]
    assert _flagged(zigzag[:13], 4) == []
    assert _flagged(zigzag[:7] + [zigzag[6]] + zigzag[7:], 4) == []  # a repeat breaks it


def test_rule_5_two_of_three_beyond_two_sigma_on_one_side():
    assert _flagged([0, 2.5, 0.1, 2.2], 5) == [3]
    assert _flagged([2.5, 0, -2.5], 5) == []  # opposite sides
    assert _flagged([2.5, 0, 0, 2.5], 5) == []  # not within three


def test_rule_6_four_of_five_beyond_one_sigma_on_one_side():
    assert _flagged([1.5, 1.5, 0, 1.5, 1.5], 6) == [4]
    assert _flagged([1.5, 1.5, 0, 0, 1.5], 6) == []
    assert _flagged([-1.5, -1.5, -1.2, 0.2, -1.1], 6) == [4]


def test_rule_7_fifteen_within_one_sigma():
    hugging = [0.5 if i % 3 else -0.4 for i in range(16)]
    assert _flagged(hugging, 7) == [14, 15]
    assert _flagged(hugging[:14], 7) == []
    assert _flagged(hugging[:7] + [1.5] + hugging[7:14], 7) == []


def test_rule_8_eight_beyond_one_sigma_either_side():
    assert _flagged([1.5, -1.5] * 4, 8) == [7]
    assert _flagged([1.5, -1.5, 1.5, 0.5, 1.5, -1.5, 1.5, -1.5, 1.5], 8) == []


def test_only_the_rules_selected_are_judged():
    values = [0.5] * 9 + [4.0]
    everything = imr_chart(values, baseline=UNIT).signals
    assert everything[8] == [2] and everything[9] == [1, 2]  # the run goes on beyond 3 sigma
    assert imr_chart(values, rules=[1], baseline=UNIT).signals[9] == [1]
    assert imr_chart(values, rules=[], baseline=UNIT).signals == [[]] * 10


def test_rules_judge_each_point_against_its_own_sigma():
    # 1.2 is beyond 3 sigma of a point whose sigma is 0.3, not of one whose sigma is 0.5
    assert nelson_signals([1.2, 1.2], 0.0, [0.3, 0.5], [1]) == [[1], []]
    # without a sigma only the rules without zones are judged
    assert nelson_signals([5.0] * 9, 0.0, [0.0] * 9)[8] == [2]


def _by_definition(values, center, sigmas):
    """Nelson's rules read off the definitions, one point and one window at a time."""
    x, n = list(values), len(values)
    zoned = all(s > 0 for s in sigmas)
    z = [(v - center) / s for v, s in zip(x, sigmas, strict=True)] if zoned else []
    side = [(v > center) - (v < center) for v in x]
    steps = [(b > a) - (b < a) for a, b in zip(x, x[1:], strict=False)]  # step j ends at j + 1

    def last(seq, i, k):
        return seq[i + 1 - k : i + 1] if i + 1 >= k else None

    signals = []
    for i in range(n):
        fired = []
        run = last(side, i, 9)
        if run and run[0] != 0 and len(set(run)) == 1:
            fired.append(2)
        rise = last(steps, i - 1, 5) if i >= 1 else None
        if rise and rise[0] != 0 and len(set(rise)) == 1:
            fired.append(3)
        zig = last(steps, i - 1, 13) if i >= 1 else None
        if (
            zig
            and all(s != 0 for s in zig)
            and all(a != b for a, b in zip(zig, zig[1:], strict=False))
        ):
            fired.append(4)
        if zoned:
            if abs(z[i]) > 3:
                fired.append(1)
            for rule, window, k, limit in ((5, 3, 2, 2.0), (6, 5, 4, 1.0)):
                seen = last(z, i, window)
                if seen and z[i] > limit and sum(v > limit for v in seen) >= k:
                    fired.append(rule)
                if seen and z[i] < -limit and sum(v < -limit for v in seen) >= k:
                    fired.append(rule)
            hugging = last(z, i, 15)
            if hugging and all(abs(v) <= 1 for v in hugging):
                fired.append(7)
            away = last(z, i, 8)
            if away and all(abs(v) > 1 for v in away):
                fired.append(8)
        signals.append(sorted(fired))
    return signals


@pytest.mark.parametrize("seed", range(6))
def test_rules_agree_with_their_definitions_on_random_series(seed):
    """Whole-array arithmetic against the rules read point by point: drifting, tied, zigzag
    series and zero sigmas, where the rules' runs and windows start, end and overlap."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for trial in range(300):
        n = int(rng.integers(0, 80))
        shape = trial % 4
        if shape == 0:
            x = rng.normal(0, 1, n)
        elif shape == 1:
            x = rng.integers(-3, 4, n).astype(float)  # ties and points on the center line
        elif shape == 2:
            x = np.cumsum(rng.normal(0, 0.7, n))
        else:
            x = np.where(rng.random(n) < 0.5, 1.5, -1.5) * (1 + rng.random(n))
        sigmas = rng.choice([0.0, 1.0], n) if trial % 9 == 0 else rng.uniform(0.3, 1.5, n)
        expected = _by_definition(x.tolist(), 0.0, sigmas.tolist())
        assert nelson_signals(x, 0.0, sigmas) == expected, (x.tolist(), sigmas.tolist())
