"""Fixtures for tests/arms; helpers and fixtures live in arms_support.py so test modules can
import them by a unique name (a bare `conftest` import resolves to whichever conftest loaded first)."""

from arms_support import *  # noqa: F401,F403
