"""The arm node's timing figures: how late targets arrive against their stamps (what stale_after
judges) and its control timer's period error and overruns, in the diagnostics and the line it
logs at shutdown (docs/architecture.md §6; bench/arm_timing.py reads that line)."""

from __future__ import annotations

import logging
import math

from tests.arms.support import hold_targets, make_rig


def test_target_age_and_control_timer_figures(caplog) -> None:
    for rig in make_rig():
        rig.set_mode("teleop")
        left, right = hold_targets(rig)
        assert "target_age_p50_ms" not in rig.diag()  # nothing received, nothing to report
        for _ in range(9):
            rig.send(left, right, lead=-0.1)  # stamped 100 ms ago: at least that late on arrival
        rig.drain()
        d = rig.diag()
        assert d["target_age_p50_ms"] >= 100.0 and d["target_age_max_ms"] >= d["target_age_p99_ms"] >= 100.0
        for _ in range(20):
            rig.send(left, right, lead=2.0)  # stamped in the future: arrives "early", a negative age
        rig.drain()
        d = rig.diag()
        assert d["target_age_p50_ms"] < 0.0 and d["target_age_max_ms"] >= 100.0
        assert d["control_ticks"] > 0 and d["control_overruns"] >= 0
        assert math.isfinite(d["control_period_err_p99_ms"])
        caplog.set_level(logging.INFO)
    lines = [r.getMessage() for r in caplog.records if "arm node timing:" in r.getMessage()]
    assert len(lines) == 1 and "control_period_err_p99_ms=" in lines[0] and "target_age_p99_ms=" in lines[0]
