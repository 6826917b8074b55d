"""Required test tiers: where CI demands a tier, its absence fails instead of skipping.

A tier that silently skips (its venv missing, no network namespace, no Python 3.12) would let a
CI run pass without testing the ROS layer or the Flexiv adapter at all. ``.ci/run`` sets
``A2W_REQUIRE_TIERS`` (comma-separated tier names, or ``all``); a developer box without the
tiers still skips them with the reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

TIERS = ("ros", "flexiv")
ENV = "A2W_REQUIRE_TIERS"


def required(tier: str) -> bool:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; known: {TIERS}")
    wanted = {w.strip() for w in os.environ.get(ENV, "").split(",") if w.strip()}
    unknown = wanted - set(TIERS) - {"all"}
    if unknown:
        raise ValueError(f"{ENV}: unknown tier(s) {sorted(unknown)}; known: {TIERS} or 'all'")
    return tier in wanted or "all" in wanted


def unavailable(tier: str, reason: str) -> NoReturn:
    """Skip the test, or fail it where ``A2W_REQUIRE_TIERS`` names ``tier``."""
    if required(tier):
        pytest.fail(f"the {tier} tier is required here ({ENV}={os.environ[ENV]}) but cannot run: {reason}",
                    pytrace=False)
    pytest.skip(reason)
