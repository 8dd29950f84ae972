"""Every page test runs with the roles in place."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _roles(roles) -> None:
    pass
