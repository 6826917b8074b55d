"""Fixtures for tests/arms (helpers in tests/arms/support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.arms.support import Rig, make_rig


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield from make_rig()
