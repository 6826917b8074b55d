"""Records synthetic episodes into ROOT (a small tmpfs the caller mounted) until the disk is full,
then copies what is left to COPY and prints a JSON report (saved episodes, the error).

    python tests/record/disk_full_child.py ROOT COPY
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from a2w.record.writer import DatasetWriter, EpisodeFailed  # noqa: E402
from tests.record.frames import VIEWS, H, W  # noqa: E402
from tests.record.support import synthetic_row  # noqa: E402


def main(root: Path, copy: Path) -> None:
    saved: dict[int, int] = {}
    error, failed_at = "", -1
    with DatasetWriter(root, VIEWS, W, H) as w:
        for _ in range(1000):
            e = len(w.episodes)
            ep = w.begin_episode("lift the box with both arms", seed=e)
            try:
                for r in range(40):
                    ep.add_row(synthetic_row(e, r))
                s = ep.save()
                saved[s.episode_index] = s.length
            except EpisodeFailed as exc:
                error, failed_at = str(exc), e
                log = ep.log_lines
                break
    shutil.copytree(root, copy)
    print(json.dumps({"saved": saved, "error": error, "failed_at": failed_at, "log": log}))  # noqa: T201


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
