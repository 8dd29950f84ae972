"""A zone's limits are checked where they are set (the admin's form runs Zone.clean)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from lines.models import Zone, zone_limit_problems


@pytest.mark.parametrize(
    ("limits", "problem_at"),
    [
        ({"humidity": {"max": 5}}, "humidity"),
        ({"dew_point_c": {"min": -80}}, "dew_point_c"),  # a dew point has only a maximum
        ({"dew_point_c": {"max": "-40"}}, "dew_point_c"),
        ({"dew_point_c": {}}, "dew_point_c"),
        ({"temperature_c": {"min": 26, "max": 18}}, "temperature_c"),
        ({"h2s_ppm": 1}, "h2s_ppm"),
        ([], "limits"),
    ],
)
def test_limits_that_cannot_be_judged_are_refused(limits, problem_at):
    assert list(zone_limit_problems(limits)) == [problem_at]


def test_the_seeded_limits_are_right_and_a_bad_exposure_limit_is_refused(plant):
    zone = Zone.objects.get(code="proto-dry-room")
    assert zone_limit_problems(zone.limits) == {}
    zone.clean()
    zone.exposure_limits_h = {"electrolyte": 0}
    with pytest.raises(ValidationError, match="hours"):
        zone.clean()
