"""Fixtures for tests/ros; helpers and fixtures live in ros_support.py so test modules can
import them by a unique name (a bare `conftest` import resolves to whichever conftest loaded first)."""

from ros_support import *  # noqa: F401,F403
