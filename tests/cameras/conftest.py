"""Fixtures for tests/cameras; helpers and fixtures live in cameras_support.py so test modules can
import them by a unique name (a bare `conftest` import resolves to whichever conftest loaded first)."""

from cameras_support import *  # noqa: F401,F403
from cameras_support import _quiet_librealsense  # noqa: F401  (autouse fixture)
