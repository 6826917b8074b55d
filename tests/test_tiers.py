"""A2W_REQUIRE_TIERS turns a missing tier from a skip into a failure (.ci/run sets it)."""

from __future__ import annotations

import pytest

from tests import tiers


@pytest.mark.parametrize("tier", tiers.TIERS)
@pytest.mark.parametrize("setting,fails", [(None, False), ("", False), ("all", True), ("ros,flexiv", True),
                                           (" ros , flexiv ", True)])
def test_missing_tier_skips_or_fails(monkeypatch: pytest.MonkeyPatch, tier: str, setting: str | None,
                                     fails: bool) -> None:
    if setting is None:
        monkeypatch.delenv(tiers.ENV, raising=False)
    else:
        monkeypatch.setenv(tiers.ENV, setting)
    expected = pytest.fail.Exception if fails else pytest.skip.Exception
    with pytest.raises(expected, match="no venv"):
        tiers.unavailable(tier, "no venv")


def test_only_the_named_tier_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tiers.ENV, "ros")
    assert tiers.required("ros") and not tiers.required("flexiv")


@pytest.mark.parametrize("setting", ["rso", "ros,gpu"])
def test_a_misspelt_tier_is_an_error(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv(tiers.ENV, setting)
    with pytest.raises(ValueError, match="unknown tier"):
        tiers.required("ros")


def test_ci_requires_both_tiers() -> None:
    from pathlib import Path

    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert f"{tiers.ENV}=all" in ci or f"{tiers.ENV}=ros,flexiv" in ci
