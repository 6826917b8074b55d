"""bench/vae.py runs end to end (tiny config, tiny frames) and prints its ratio lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "vae.py"


def test_bench_prints_both_ratios() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--config", "tiny", "--size", "8", "--warmup", "0", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr
    assert "fp32: chunked / single-pass" in out.stdout
    assert "chunked: bf16 / fp32" in out.stdout

