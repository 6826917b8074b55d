"""The tree passes ruff with the configuration in pyproject.toml ([tool.ruff]), so a finding fails
`make test` and CI like any other test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("models", "ros_ws/src", "tests", "bench", "scripts")


def test_ruff_finds_nothing() -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           *CHECKED], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"ruff check {' '.join(CHECKED)} (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
