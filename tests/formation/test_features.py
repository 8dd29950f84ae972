"""Formation features on synthetic protocols whose answers are known analytically."""

from __future__ import annotations

import numpy as np
import pytest

from formation.cycler import (
    CyclerData,
    downsample_curve,
    formation_features,
    half_cycles,
    read_cycler_file,
    voltage_capacity_curve,
)

from . import synthetic
from .synthetic import FORMATION, Curve


def as_data(curve: Curve) -> CyclerData:
    return CyclerData(
        time_s=curve.time_s,
        voltage_v=curve.voltage_v,
        current_a=curve.current_a,
        step=curve.step,
        cycle=np.ones(curve.time_s.size, dtype=np.int64),
        temperature_c=curve.temperature_c,
        format="csv",
        parser="test",
        rows=curve.time_s.size,
    )


EXPECTED_KEYS = {
    "first_charge_capacity_ah",
    "first_discharge_capacity_ah",
    "initial_coulombic_efficiency",
    "discharge_energy_wh",
    "average_discharge_voltage_v",
    "max_temperature_c",
    "later_coulombic_efficiency",
    "min_voltage_v",
    "max_voltage_v",
    "max_gap_intervals",
    "soft_short_events",
    "rows",
    "first_charge_complete",
    "first_discharge_complete",
    "charge_energy_wh",
    "average_charge_voltage_v",
    "initial_energy_efficiency",
    "first_charge_cc_capacity_ah",
    "first_charge_cv_capacity_ah",
    "cycles",
    "last_discharge_capacity_ah",
    "capacity_retention_last",
    "incomplete_half_cycles",
    "protocol_steps",
}


def test_formation_features_match_the_analytic_values(tmp_path):
    curve = synthetic.build(FORMATION)
    path = synthetic.write_csv(curve, tmp_path / "formation.csv")
    data = read_cycler_file(path)
    features = formation_features(data)

    assert set(features) == EXPECTED_KEYS
    assert all(isinstance(value, float) for value in features.values())
    rel = 1e-9  # shared step boundaries and piecewise-linear V, I: the trapezoid rule is exact
    assert features["first_charge_capacity_ah"] == pytest.approx(synthetic.Q_CHARGE_1, rel=rel)
    assert features["first_discharge_capacity_ah"] == pytest.approx(
        synthetic.Q_DISCHARGE_1, rel=rel
    )
    assert features["initial_coulombic_efficiency"] == pytest.approx(
        synthetic.Q_DISCHARGE_1 / synthetic.Q_CHARGE_1, rel=rel
    )
    assert features["discharge_energy_wh"] == pytest.approx(synthetic.ENERGY_DISCHARGE_1, rel=rel)
    # Not Q x a nominal voltage: the mean of the linear discharge from 4.10 V to 3.00 V.
    assert features["average_discharge_voltage_v"] == pytest.approx(3.55, rel=rel)
    assert features["later_coulombic_efficiency"] == pytest.approx(
        synthetic.Q_DISCHARGE_2 / synthetic.Q_CHARGE_2, rel=rel
    )
    assert features["min_voltage_v"] == pytest.approx(2.90)
    assert features["max_voltage_v"] == pytest.approx(4.20)
    assert features["max_temperature_c"] == pytest.approx(float(np.max(curve.temperature_c)))
    assert features["max_gap_intervals"] == pytest.approx(1.0)  # one uniform 10 s grid
    assert features["soft_short_events"] == 0.0
    assert features["rows"] == float(curve.time_s.size)
    # Every cycle: CC charge 0.5 A over 3.0-4.2 V for 2 h (3.6 Wh), CV at 4.2 V 0.1375 Ah.
    charge_wh = 0.5 * (3.0 + 4.2) / 2 * 2 + 4.2 * 0.1375
    assert features["charge_energy_wh"] == pytest.approx(charge_wh, rel=rel)
    assert features["average_charge_voltage_v"] == pytest.approx(
        charge_wh / synthetic.Q_CHARGE_1, rel=rel
    )
    assert features["initial_energy_efficiency"] == pytest.approx(
        synthetic.ENERGY_DISCHARGE_1 / charge_wh, rel=rel
    )
    # The 2 % CC tolerance admits the taper's first 40 s (0.50 -> 0.49 A) as constant current.
    cc, cv = features["first_charge_cc_capacity_ah"], features["first_charge_cv_capacity_ah"]
    assert cc + cv == pytest.approx(synthetic.Q_CHARGE_1, rel=rel)
    assert 1.0 - 1e-9 <= cc <= 1.0 + (0.5 + 0.49) / 2 * 40 / 3600 + 1e-9
    assert features["cycles"] == 2.0
    assert features["last_discharge_capacity_ah"] == pytest.approx(synthetic.Q_DISCHARGE_2)
    assert features["capacity_retention_last"] == pytest.approx(
        synthetic.Q_DISCHARGE_2 / synthetic.Q_DISCHARGE_1, rel=rel
    )
    assert features["first_charge_complete"] == features["first_discharge_complete"] == 1.0
    assert features["incomplete_half_cycles"] == 0.0
    assert features["protocol_steps"] == float(len(FORMATION))  # one step per segment


def test_uniform_grid_misses_at_most_one_sample_interval_per_half_cycle():
    curve = synthetic.build(FORMATION, shared_boundaries=False)
    features = formation_features(as_data(curve))
    one_interval_ah = 0.5 * synthetic.DT / 3600 + 1e-12  # 0.5 A for one 10 s sample
    assert abs(features["first_charge_capacity_ah"] - synthetic.Q_CHARGE_1) <= one_interval_ah
    assert abs(features["first_discharge_capacity_ah"] - synthetic.Q_DISCHARGE_1) <= one_interval_ah
    assert features["discharge_energy_wh"] == pytest.approx(synthetic.ENERGY_DISCHARGE_1, rel=2e-3)


def test_the_leading_partial_discharge_and_rests_are_skipped():
    cycles = half_cycles(as_data(synthetic.build(FORMATION)))
    assert [c.sign for c in cycles] == [-1, 1, -1, 1, -1]
    assert cycles[0].capacity_ah == pytest.approx(0.1 * 360 / 3600)  # the skipped one
    # The CC and CV parts are one charge: the taper to 10 % of the CC current does not split it.
    assert cycles[1].capacity_ah == pytest.approx(synthetic.Q_CHARGE_1)


def test_a_pause_and_a_deep_cv_taper_inside_a_charge_do_not_split_it():
    segments = [
        ("rest", 300, 0.0, 0.0, 3.0, 3.0),
        ("cc charge", 3600, 0.5, 0.5, 3.0, 3.8),  # 0.5 Ah
        # A pause with current noise (0.05 % of the CC current) inside the charge.
        ("pause", 300, 0.00025, 0.00025, 3.75, 3.75),
        ("cc charge", 3600, 0.5, 0.5, 3.8, 4.2),  # 0.5 Ah
        ("cv taper", 3600, 0.5, 0.005, 4.2, 4.2),  # down to 1 % of CC: 0.2525 Ah
        ("rest", 300, 0.0, 0.0, 4.1, 4.1),
        ("cc discharge", 7200, -0.5, -0.5, 4.1, 3.0),  # 1.0 Ah
        ("rest", 300, 0.0, 0.0, 3.1, 3.1),
    ]
    data = as_data(synthetic.build(segments))
    cycles = half_cycles(data)
    assert [c.sign for c in cycles] == [1, -1]
    pause_ah = 0.00025 * 300 / 3600  # integrated too: it is inside the charge's span
    expected = 0.5 + 0.5 + (0.5 + 0.005) / 2 + pause_ah
    assert cycles[0].capacity_ah == pytest.approx(expected, rel=1e-9)
    assert formation_features(data)["initial_coulombic_efficiency"] == pytest.approx(
        1.0 / expected, rel=1e-9
    )


def test_a_short_discharge_pulse_inside_a_charge_is_not_a_half_cycle():
    segments = [
        ("rest", 300, 0.0, 0.0, 3.0, 3.0),
        ("cc charge", 3600, 0.5, 0.5, 3.0, 3.8),
        ("dcir pulse", 10, -0.5, -0.5, 3.7, 3.7),  # 1.4 mAh, 0.13 % of the charge
        ("cc charge", 3600, 0.5, 0.5, 3.8, 4.2),
        ("rest", 300, 0.0, 0.0, 4.1, 4.1),
        ("cc discharge", 7200, -0.5, -0.5, 4.1, 3.0),
    ]
    cycles = half_cycles(as_data(synthetic.build(segments)))
    assert [c.sign for c in cycles] == [1, -1]
    # Only the charge's own sign is integrated: the pulse neither adds nor subtracts.
    assert cycles[0].capacity_ah == pytest.approx(1.0, rel=1e-9)
    assert cycles[1].capacity_ah == pytest.approx(1.0, rel=1e-9)


def with_drop(curve: Curve, *, start_s: float, samples: int, drop_v: float) -> Curve:
    """Lower the voltage by drop_v for `samples` rows from start_s (inside the first CC charge)."""
    voltage = curve.voltage_v.copy()
    first = int(np.searchsorted(curve.time_s, start_s))
    voltage[first : first + samples] -= drop_v
    return Curve(curve.time_s, voltage, curve.current_a, curve.step, curve.temperature_c)


def test_a_sustained_voltage_drop_under_cc_charge_is_a_soft_short_event():
    curve = synthetic.build(FORMATION)
    cc_start = 600 + 360 + 300
    # 20 mV down for 5 minutes, an hour into the first CC charge (which rises ~1.7 mV per row).
    shorted = with_drop(curve, start_s=cc_start + 3600, samples=30, drop_v=0.020)
    assert formation_features(as_data(shorted))["soft_short_events"] >= 1
    # Two separate drops, one in each cycle's CC charge, are two events.
    second_cc = cc_start + 7200 + 1800 + 600 + 7560 + 600
    twice = with_drop(shorted, start_s=second_cc + 1800, samples=30, drop_v=0.020)
    assert formation_features(as_data(twice))["soft_short_events"] == 2


def test_no_soft_short_on_a_clean_charge_a_glitch_or_a_drop_in_rest():
    curve = synthetic.build(FORMATION)
    assert formation_features(as_data(curve))["soft_short_events"] == 0
    cc_start = 600 + 360 + 300
    glitch = with_drop(curve, start_s=cc_start + 3600, samples=1, drop_v=0.050)
    assert formation_features(as_data(glitch))["soft_short_events"] == 0  # one sample: a glitch
    small = with_drop(curve, start_s=cc_start + 3600, samples=30, drop_v=0.004)
    # 4 mV down on a line rising 1.7 mV a row: 2.3 mV under the running maximum at most.
    assert formation_features(as_data(small))["soft_short_events"] == 0
    rest_start = cc_start + 7200 + 1800
    in_rest = with_drop(curve, start_s=rest_start + 100, samples=20, drop_v=0.050)
    assert formation_features(as_data(in_rest))["soft_short_events"] == 0


def test_features_without_a_charge_leave_the_capacity_keys_out():
    segments = [("rest", 300, 0.0, 0.0, 3.0, 3.0), ("discharge", 600, -0.2, -0.2, 3.0, 2.8)]
    features = formation_features(as_data(synthetic.build(segments)))
    for key in ("first_charge_capacity_ah", "first_discharge_capacity_ah",
                "initial_coulombic_efficiency", "discharge_energy_wh",
                "average_discharge_voltage_v", "later_coulombic_efficiency"):  # fmt: skip
        assert key not in features
    assert features["min_voltage_v"] == pytest.approx(2.8)


def test_downsample_keeps_extremes_order_and_the_limit():
    x = np.linspace(0.0, 100.0, 100_001)
    y = np.sin(x)
    y[54_321] = 5.0  # a one-sample spike that every-n-th thinning would lose
    xs, ys = downsample_curve(x, y, max_points=500)
    assert xs.size <= 500
    assert np.all(np.diff(xs) > 0)
    assert xs[0] == x[0] and xs[-1] == x[-1]
    assert ys.max() == 5.0 and ys.min() == pytest.approx(-1.0, abs=1e-6)
    again = downsample_curve(x, y, max_points=500)
    assert np.array_equal(again[0], xs) and np.array_equal(again[1], ys)  # deterministic
    short_x, short_y = downsample_curve(x[:10], y[:10])
    assert np.array_equal(short_x, x[:10]) and np.array_equal(short_y, y[:10])


def test_voltage_capacity_curve_spans_the_first_cycle():
    curve = synthetic.build(FORMATION)
    capacity, voltage = voltage_capacity_curve(as_data(curve), max_points=300)
    assert capacity.size == voltage.size and 0 < capacity.size <= 300
    assert capacity[0] == 0.0
    assert capacity.max() == pytest.approx(synthetic.Q_CHARGE_1, rel=1e-9)
    assert capacity[-1] == pytest.approx(synthetic.Q_CHARGE_1 - synthetic.Q_DISCHARGE_1, rel=1e-9)
    assert voltage.max() == pytest.approx(4.20) and voltage[-1] == pytest.approx(3.00)


def test_cycles_are_derived_when_the_file_has_none(tmp_path):
    curve = synthetic.build(FORMATION)
    data = read_cycler_file(synthetic.write_csv(curve, tmp_path / "formation.csv"))
    second_charge_s = 600 + 360 + 300 + 7200 + 1800 + 600 + 7560 + 600
    # The partial discharge before the first charge belongs to cycle 1, with the formation cycle.
    k = int(np.flatnonzero((curve.time_s >= second_charge_s) & (curve.current_a > 0))[0])
    assert np.all(data.cycle[:k] == 1)
    assert np.all(data.cycle[k:] == 2)
    np.testing.assert_array_equal(data.step, curve.step)  # the file's own Step column is kept
