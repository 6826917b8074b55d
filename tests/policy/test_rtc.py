"""RTC continuity: at a chunk switch the executed trajectory continues the committed prefix, where the
naive switch jumps by the difference between the two chunks' modes. Measured in the same test with
the same synthetic policy and delays; the jump is a geometric quantity, not a timing."""

from __future__ import annotations

import numpy as np
import pytest

from a2w.policy import Mode
from tests.policy.support import PERIOD, SyntheticPolicy, Trace, boundary_metrics, simulate


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3, 0.5])
def test_rtc_continues_the_prefix_where_the_naive_switch_jumps(delay: float) -> None:
    offset = 0.01  # each chunk's mode sits 1 cm from the path, in a direction of its own
    naive = simulate(Mode.NAIVE, delay, policy=SyntheticPolicy(offset=offset), seed=3)
    rtc = simulate(Mode.RTC, delay, policy=SyntheticPolicy(offset=offset), seed=3)
    assert len(naive.switches) >= 4 and len(rtc.switches) >= 4
    assert all(p > 0 for p in rtc.prefix_lengths[1:]), "every chunk after the first carries a prefix"
    jump_naive, _ = boundary_metrics(naive)
    jump_rtc, _ = boundary_metrics(rtc)
    # Naive: two independent modes 1 cm from the path differ by up to 2 cm.
    assert jump_naive > 0.5 * offset
    # RTC: the model starts from the prefix's last target; what is left is its relaxation step.
    relax_step = 2 * offset * (1 - np.exp(-1 / SyntheticPolicy().tau))
    assert jump_rtc < 1.05 * relax_step
    assert jump_rtc * 4 < jump_naive


@pytest.mark.parametrize("delay", [0.1, 0.4])
def test_rtc_executes_exactly_what_was_committed_during_inference(delay: float) -> None:
    """The targets executed in each inference window are those committed before it (the prefix),
    so the arm never sees a target replaced while the model ran."""
    rtc = simulate(Mode.RTC, delay, policy=SyntheticPolicy(offset=0.01), seed=5)
    naive = simulate(Mode.NAIVE, delay, policy=SyntheticPolicy(offset=0.01), seed=5)

    def worst_replacement(trace: Trace) -> float:
        x, t = trace.positions, trace.times
        # Where a chunk takes over, compare the executed target with a straight continuation of the
        # two before it: RTC's prefix continues them, a replaced target does not.
        worst = 0.0
        for s in trace.switches[1:]:
            i = int(np.searchsorted(t, s - 1e-9))
            if 2 <= i < len(x):
                worst = max(worst, float(np.abs(x[i] - (2 * x[i - 1] - x[i - 2])).max()))
        return worst

    assert worst_replacement(rtc) * 4 < worst_replacement(naive)


def test_the_blend_fallback_also_removes_the_jump_at_the_switch() -> None:
    naive = simulate(Mode.NAIVE, 0.3, policy=SyntheticPolicy(offset=0.01), seed=3)
    blend = simulate(Mode.BLEND, 0.3, policy=SyntheticPolicy(offset=0.01), seed=3)
    assert boundary_metrics(blend)[0] * 4 < boundary_metrics(naive)[0]


@pytest.mark.parametrize("mode", list(Mode))
def test_up_to_half_the_horizon_async_never_stalls_and_sync_waits(mode: Mode) -> None:
    trace = simulate(mode, 0.9, jitter=0.0, seed=1)
    assert np.isfinite(trace.task_time)
    if mode is Mode.SYNC:
        # The arm waits out every inference after the first: about 0.9 s per chunk.
        assert trace.stalls >= (len(trace.switches) - 1) * round(0.9 / PERIOD) - len(trace.switches)
    else:
        assert trace.stalls == 0 and trace.dropped == 0
