"""The policy node's scheduling in simulated time: synchronous vs asynchronous naive vs asynchronous
with real-time chunking, under injected inference delays from 0 to 60 % of the 2 s horizon.

Runs ``a2w.policy`` (the action queue, its 30 Hz executor step and the chunk scheduler) against the
synthetic policy of ``tests/policy/support.py``: a smooth dual-arm path plus a per-chunk offset (each
sample's mode, 1 cm by default), prefix-aware in ``rtc`` mode. The arm tracks its targets perfectly; the
task ends when the path's progress reaches ``--duration`` seconds. Each inference takes the injected
delay ± ``--jitter``. All executors see the same seeds in the same run.

Per delay and executor (worst over the seeds, task time averaged):

* stalls: executor ticks with nothing to send after the first target (the arm holds);
* jump: the largest change of the executed step where a chunk takes over, |x_i - 2 x_(i-1) + x_(i-2)|
  (mm; the path's own motion cancels, a discontinuity does not);
* jerk: the largest third difference over the ticks spanning a switch (m/s^3);
* task time and its overhead over the same executor at zero delay (the first inference included:
  the arm cannot start before the first chunk).

In simulated time every tick is on time, so a second table (``--node``, on by default) runs the real
policy node: the in-process sim stack at real-time factor 1 (sim, cameras, arm node with its safety
layers), with the scripted path model of ``tests/policy/stack.py`` in the inference worker's place,
answering after the injected delay. Per executor and delay, over ``--node-seconds`` of wall time after
the first chunk: the executor's period error p99 and overruns on the node's clock (the sim clock, as
everything in the stack: the sim arms read it too, so a wall-clock stack is not possible here), the sim's
real-time factor, stalls, dropped (stale) actions, and the largest switch jump of the targets the arm
node received. Period errors are also given as ratios to the first row, measured in the same run.
The path model is indexed by time, so a sync executor that stood still during inference resumes where
the path is by then: its jump includes the wait (a state-conditioned policy would not jump there).

    .venv/bin/python bench/policy_node.py [--seeds 3] [--duration 6] [--jitter 0.05] [--max-prefix 20]
                                          [--no-node] [--node-seconds 8] [--node-fractions 0 0.3 0.6]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.policy.support: the synthetic policy and the simulated loop

from a2w.policy import Mode  # noqa: E402
from tests.policy.support import HORIZON, PERIOD, SyntheticPolicy, boundary_metrics, simulate  # noqa: E402

log = logging.getLogger("bench.policy_node")
EXECUTORS = (("sync", Mode.SYNC), ("async naive", Mode.NAIVE), ("async rtc", Mode.RTC),
             ("async blend", Mode.BLEND))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0, help="task length, s of nominal motion")
    ap.add_argument("--jitter", type=float, default=0.05, help="relative spread of each inference delay")
    ap.add_argument("--offset", type=float, default=0.01, help="per-chunk mode offset, m")
    ap.add_argument("--max-prefix", type=int, default=20, help="longest prefix the policy takes (its training max)")
    ap.add_argument("--margin", type=float, default=0.1, help="s added to the p95 delay")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    ap.add_argument("--no-node", dest="node", action="store_false", help="skip the real-clock node table")
    ap.add_argument("--node-seconds", type=float, default=8.0, help="wall seconds per node run")
    ap.add_argument("--node-fractions", type=float, nargs="+", default=[0.0, 0.3, 0.6])
    args = ap.parse_args(argv)
    fractions = sorted({0.0, *args.fractions})  # zero delay is every executor's baseline
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    horizon_s = HORIZON * PERIOD
    t0 = time.perf_counter()
    rows = []
    base: dict[str, float] = {}
    for frac in fractions:
        delay = frac * horizon_s
        for name, mode in EXECUTORS:
            stalls, jumps, jerks, tasks, prefixes = [], [], [], [], []
            for seed in range(args.seeds):
                tr = simulate(mode, delay, duration=args.duration, jitter=args.jitter, margin=args.margin,
                              max_prefix=args.max_prefix, seed=seed,
                              policy=SyntheticPolicy(offset=args.offset, seed=seed))
                jump, jerk = boundary_metrics(tr)
                stalls.append(tr.stalls)
                jumps.append(jump)
                jerks.append(jerk)
                tasks.append(tr.task_time)
                prefixes.extend(tr.prefix_lengths[1:])
            task = float(np.mean(tasks))
            if frac == 0.0:
                base[name] = task
            rows.append((frac, delay, name, max(stalls), max(jumps) * 1e3, max(jerks), task,
                         float(np.mean(prefixes)) if prefixes else 0.0))
    print(f"policy scheduling, simulated time: horizon {HORIZON} actions = {horizon_s:.1f} s at "
          f"{1 / PERIOD:.0f} Hz, task {args.duration:.1f} s of motion, chunk modes {args.offset * 1e3:.0f} mm apart, "
          f"delay jitter ±{args.jitter * 100:.0f} %, max prefix {args.max_prefix}, {args.seeds} seeds")
    print(f"{'delay':>11} {'executor':<12} {'stalls':>6} {'jump mm':>8} {'jerk m/s³':>10} {'task s':>7} "
          f"{'overhead':>8} {'prefix':>6}")
    for frac, delay, name, stalls, jump, jerk, task, prefix in rows:
        over = (task / base[name] - 1) * 100 if name in base else float("nan")
        print(f"{frac * 100:3.0f}% {delay:4.2f} s {name:<12} {stalls:6d} {jump:8.2f} {jerk:10.0f} {task:7.2f} "
              f"{over:7.1f}% {prefix:6.1f}")
    log.info("(%.1f s)", time.perf_counter() - t0)
    if args.node:
        node_table(args.node_seconds, sorted({0.0, *args.node_fractions}))
    return 0


def node_table(seconds: float, fractions: list[float]) -> None:
    """The real policy node in the in-process sim stack (see the module docstring)."""
    import tempfile

    from tests.policy.stack import PathModel, start_stack, switch_jump, tiny_checkpoint

    logging.getLogger("a2w").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = tiny_checkpoint(Path(tmp))
        for frac in fractions:
            for name, mode in EXECUTORS[:3]:
                model = PathModel(seed=1)
                model.delay = frac * HORIZON * PERIOD
                st = start_stack(ckpt, {"mode": mode.value, "initial_delay": max(model.delay, 0.05)}, model=model)
                try:
                    st.wait(lambda: st.policy.scheduler.chunks >= 1, 120, "a first chunk")
                    sim0, wall0 = st.probe.now(), time.perf_counter()
                    time.sleep(seconds)
                    rtf = (st.probe.now() - sim0) / (time.perf_counter() - wall0)
                    rep = st.policy.timer_stats.report()
                    d = st.policy.diagnostics()
                    rows.append((frac, name, rep.error_p99 * 1e3, rep.overruns, rtf, d["stalls"],
                                 d["dropped_actions"], switch_jump(st) * 1e3, d["chunks"]))
                finally:
                    st.host.shutdown()
    print(f"\npolicy node in the in-process sim stack (real-time factor 1 asked), {seconds:g} s of wall time per "
          f"run after the first chunk; delays are wall seconds")
    print(f"{'delay':>11} {'executor':<12} {'period err p99 ms':>17} {'vs first':>8} {'overruns':>8} "
          f"{'RTF':>5} {'stalls':>6} {'dropped':>7} {'jump mm':>8} {'chunks':>6}")
    base = rows[0][2] if rows else float("nan")
    for frac, name, p99, over, rtf, stalls, dropped, jump, chunks in rows:
        print(f"{frac * 100:3.0f}% {frac * HORIZON * PERIOD:4.2f} s {name:<12} {p99:17.2f} {p99 / base:8.2f} "
              f"{over:8d} {rtf:5.2f} {stalls:6d} {dropped:7d} {jump:8.2f} {chunks:6d}")
    log.info("(%.1f s)", time.perf_counter() - t0)


if __name__ == "__main__":
    sys.exit(main())
