"""The recorder process the kill tests kill: appends synthetic episodes to a dataset and, after
each save returns, appends "<episode> <rows>" to a progress file (fsync'd), so the killer knows
which episodes were saved. ``--kill-at STEP`` makes it SIGKILL itself at that commit step of its
first episode (steps: encoding, encoded, files, a2w, tasks, episode, info).

    python tests/record/record_child.py ROOT PROGRESS [--episodes N] [--kill-at STEP] [--pace S]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from a2w.record.writer import DatasetWriter  # noqa: E402
from tests.record.frames import VIEWS, H, W  # noqa: E402
from tests.record.support import synthetic_row  # noqa: E402


def episode_length(e: int) -> int:
    return 20 + (e * 7) % 31


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("progress", type=Path)
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--kill-at", default="")
    ap.add_argument("--pace", type=float, default=0.01, help="seconds between rows")
    a = ap.parse_args()

    def hook(step: str) -> None:
        if step == a.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    with DatasetWriter(a.root, VIEWS, W, H, commit_hook=hook) as w:
        for _ in range(a.episodes):
            e = len(w.episodes)
            ep = w.begin_episode("lift the box with both arms", seed=e)
            for r in range(episode_length(e)):
                ep.add_row(synthetic_row(e, r))
                time.sleep(a.pace)
            s = ep.save()
            with open(a.progress, "a") as f:
                f.write(f"{s.episode_index} {s.length}\n")
                f.flush()
                os.fsync(f.fileno())


if __name__ == "__main__":
    main()
