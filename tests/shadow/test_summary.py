"""The shadow's verdict over a run (``a2w.shadow.summary``), and the node logging it at shutdown: every
report counts (the node keeps only its last 100), an alarm is counted once per entry into ALARM, the
lag's median and max are over the whole run, and a verdict never claims OK for a level that could not
rise. With ``optional`` a missing checkpoint directory leaves the node idle with a warning."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.msgs.shadow import ShadowReport
from a2w.shadow.alarm import Level, Thresholds
from a2w.shadow.component import ShadowNode
from a2w.shadow.summary import ShadowSummary
from tests.shadow.support import tiny_worldmodel

VIEWS = ("left_wrist", "right_wrist", "front")


def report(i: int, level: int = 0, score: float = 0.5, lag: float = 1.0) -> ShadowReport:
    return ShadowReport(2.0 * (i + 1), i, VIEWS, (score,) * 3, (0.5,) * 3, score, 0.0, level, 2.0, lag)


@pytest.mark.parametrize("levels, worst, alarms", [
    ([], Level.OK, 0),
    ([0, 0, 0], Level.OK, 0),
    ([0, 1, 1, 0], Level.WARN, 0),
    ([0, 2, 2, 2, 0], Level.ALARM, 1),  # one alarm however many windows it lasts
    ([2, 1, 2, 0, 2], Level.ALARM, 3),  # left and entered again: each entry counts
    ([1, 2, 1, 1], Level.ALARM, 1),  # the worst level is kept after the level falls back
])
def test_worst_level_and_alarm_entries(levels: list[int], worst: Level, alarms: int) -> None:
    s = ShadowSummary()
    for i, lv in enumerate(levels):
        s.add(report(i, lv, score=2.0 if lv == 2 else 0.5))
    assert (s.reports, s.worst, len(s.alarms)) == (len(levels), worst, alarms)
    assert [t for t, _ in s.alarms] == [2.0 * (i + 1) for i, lv in enumerate(levels)
                                        if lv == 2 and (i == 0 or levels[i - 1] != 2)]
    text = s.text(calibrated=True)
    assert text.startswith("shadow verdict: ") and "/shadow/report" in text and "/diagnostics" in text
    if levels:
        assert f"{len(levels)} reports, worst level {worst.name}, {alarms} alarm(s)" in text, text
    else:
        assert "no reports" in text


def test_lag_median_and_max_cover_the_whole_run_and_skip_non_finite_lags() -> None:
    s = ShadowSummary()
    lags = [0.5, 3.0, 1.0, math.inf, 2.0, math.nan]
    for i, lag in enumerate(lags):
        s.add(report(i, lag=lag))
    assert s.reports == 6 and s.lag_median == pytest.approx(1.5) and s.lag_max == pytest.approx(3.0)
    assert "median 1.50 s, max 3.00 s" in s.text(True)
    assert math.isnan(ShadowSummary().lag_median) and math.isnan(ShadowSummary().lag_max)


def test_unjudged_windows_skips_and_failures_are_named_and_uncalibrated_is_not_ok() -> None:
    s = ShadowSummary()
    s.add(report(0, score=math.inf))
    s.add(report(1))
    text = s.text(calibrated=False, skipped=4, failed=1)
    assert "uncalibrated" in text and "worst level OK (" in text, text
    assert "4 windows skipped" in text and "1 failed" in text and "1 unjudged" in text, text
    assert "skipped" not in ShadowSummary().text(True)
    assert ShadowSummary().text(True, off="no checkpoint at X").startswith("shadow verdict: off (no checkpoint at X)")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_worldmodel(tmp_path_factory.mktemp("worldmodel"))


def test_the_node_counts_every_report_and_logs_its_verdict_at_shutdown(checkpoint: Path, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    Thresholds(warn=0.9, alarm=1.5).save(tmp_path / "t.json")
    host = Host(diagnostics_period=0)
    node = host.add(NodeSpec(ShadowNode, "shadow_node", params={
        "checkpoint": str(checkpoint), "thresholds": str(tmp_path / "t.json"), "alarm_leave": 1}))
    # 150 windows (more than the 100 the node keeps), an alarm at 40-41 and one at 120
    scores = [2.0 if i in (40, 41, 120) else 0.1 for i in range(150)]
    for i, score in enumerate(scores):
        node._publish(report(i, score=score, lag=0.0))
    assert len(node.reports) == 100 and node.summary.reports == 150
    assert node.summary.worst is Level.ALARM and [t for t, _ in node.summary.alarms] == [82.0, 242.0]
    caplog.set_level(logging.INFO)
    host.shutdown()
    verdict = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shadow verdict:")]
    assert len(verdict) == 1 and "150 reports, worst level ALARM, 2 alarm(s): at 82.0 s" in verdict[0], verdict


def test_an_optional_shadow_without_its_checkpoint_stays_off_and_says_so(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "worldmodel_sim"
    caplog.set_level(logging.INFO)
    host = Host(diagnostics_period=0)
    node = host.add(NodeSpec(ShadowNode, "shadow_node", params={"checkpoint": str(missing), "optional": True}))
    host.start()
    host.shutdown()
    assert node.off and node.diagnostics() == {"level": "off", "off": f"no A2World-sim checkpoint at {missing}"}
    assert node.health() == (DiagnosticLevel.WARN, f"shadow off: no A2World-sim checkpoint at {missing}")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"shadow off for this run: {missing}") for m in messages), messages
    assert any(m.startswith("shadow verdict: off (no A2World-sim checkpoint") for m in messages), messages


@pytest.mark.parametrize("optional", [False, True])
def test_a_checkpoint_that_is_not_a_directory_or_not_optional_is_still_an_error(tmp_path: Path,
                                                                                 optional: bool) -> None:
    # optional forgives only a directory that does not exist: an empty (broken) one is an error
    target = tmp_path / ("empty" if optional else "missing")
    if optional:
        target.mkdir()
    with pytest.raises(Exception) as exc:  # the loader's own error, whichever it is
        Host(diagnostics_period=0).add(NodeSpec(ShadowNode, "shadow_node", params={"checkpoint": str(target),
                                                                                   "optional": optional}))
    assert str(target) in str(exc.value), str(exc.value)
