"""The test suite as one package: fixtures live in each directory's conftest.py, helpers a test
module imports in that directory's support.py (tests/support.py for the ones every tier uses),
the components that exercise the hosts in tests/probe_components.py."""
