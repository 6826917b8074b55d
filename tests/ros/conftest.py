"""Fixtures for tests/ros."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ros.support import TIER, tier_problem
from tests.tiers import unavailable


@pytest.fixture(scope="session")
def ros_tier() -> Path:
    """The real-rclpy tier's venv; skips (or fails where CI requires the tier) when it cannot run."""
    problem = tier_problem()
    if problem:
        unavailable("ros", problem)
    return TIER
