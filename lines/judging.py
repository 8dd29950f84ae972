"""Judging measured values against a recipe version's limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from lines.models import RecipeVersion


class Reading(NamedTuple):
    """One measured value as judged against its recipe parameter: a Measurement row to be."""

    name: str
    value: float
    unit: str = ""
    min: float | None = None
    max: float | None = None
    in_spec: bool | None = None


def judge(
    version: RecipeVersion, measurements: Mapping[str, float]
) -> tuple[list[Reading], list[dict]]:
    """Measurements judged against a recipe version's inclusive limits, and the violations.

    A required parameter that is missing is a violation. A name the recipe does not list (a
    diagnostic reading the equipment adds) is kept and left unjudged (in_spec None): it fails
    nothing, and no reading is thrown away.
    """
    parameters = version.parameters_by_name
    rows, violations = [], []
    for name, value in measurements.items():
        value = float(value)
        parameter = parameters.get(name)
        if parameter is None:
            rows.append(Reading(name, value))
            continue
        in_spec = parameter.in_spec(value)
        rows.append(Reading(name, value, parameter.unit, parameter.min, parameter.max, in_spec))
        if in_spec is False:
            violations.append(
                {
                    "parameter": name,
                    "value": value,
                    "min": parameter.min,
                    "max": parameter.max,
                    "problem": "out_of_spec",
                }
            )
    for name, parameter in parameters.items():
        if parameter.required and name not in measurements:
            violations.append(
                {
                    "parameter": name,
                    "value": None,
                    "min": parameter.min,
                    "max": parameter.max,
                    "problem": "missing",
                }
            )
    return rows, violations
