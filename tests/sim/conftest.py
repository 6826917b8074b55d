"""Fixtures for tests/sim; helpers and fixtures live in sim_support.py so test modules can
import them by a unique name (a bare `conftest` import resolves to whichever conftest loaded first)."""

from sim_support import *  # noqa: F401,F403
