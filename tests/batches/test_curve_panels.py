"""The cell page draws a formation file's curves as a few charts an engineer reads, not one each."""

from __future__ import annotations

from django.urls import reverse

from batches.selectors import curve_panels


def _curve(unit: str, x_name: str = "t_s", x_unit: str = "s") -> dict:
    return {
        "t_s": [0.0, 1.0, 2.0],
        "values": [3.0, 3.5, 4.0],
        "unit": unit,
        "x_name": x_name,
        "x_unit": x_unit,
    }


def test_cycles_share_a_chart_and_per_cycle_figures_group_by_unit(
    proto_batch, stations, record, signed_in, operator
):
    cell = proto_batch.cells.order_by("position").first()
    record(cell, stations["PR-STK-1"])
    record(cell, stations["PR-PRS-1"], equipment_ref="L1")
    curves = {
        "voltage": _curve("V"),
        "voltage_vs_capacity": _curve("V", "capacity_ah", "Ah"),
        "voltage_vs_capacity_cycle_2": _curve("V", "capacity_ah", "Ah"),
        "voltage_vs_capacity_cycle_5": _curve("V", "capacity_ah", "Ah"),
        "dqdv_first_charge": _curve("Ah/V", "voltage_v", "V"),
        "dqdv_first_discharge": _curve("Ah/V", "voltage_v", "V"),
        "charge_capacity_per_cycle": _curve("Ah", "cycle", ""),
        "discharge_capacity_per_cycle": _curve("Ah", "cycle", ""),
        "coulombic_efficiency_per_cycle": _curve("", "cycle", ""),
    }
    run = record(cell, stations["PR-FRM-1"], curves=curves)

    panels = {p["title"]: [s["label"] for s in p["series"]] for p in curve_panels(run)}
    assert panels == {
        "voltage": ["voltage"],
        "voltage vs capacity": ["cycle 1", "cycle 2", "cycle 5"],
        "dQ/dV of the first cycle": ["charge", "discharge"],
        "per cycle: charge capacity, discharge capacity": ["charge capacity", "discharge capacity"],
        "per cycle: coulombic efficiency": ["coulombic efficiency"],
    }
    page = signed_in(operator).get(reverse("cell", args=[cell.serial])).content.decode()
    assert page.count(f'data-curve="run-{run.pk}-') == 5
