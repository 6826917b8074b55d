"""Fixtures for tests/cameras: synthetic RealSense cameras on librealsense's software_device."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from a2w.cameras.realsense.softcam import FrameFeeder, SoftwareCamera, SoftwareDeviceHub


@pytest.fixture
def rig() -> Iterator[tuple[SoftwareDeviceHub, list[SoftwareCamera]]]:
    """The rig's three cameras: a D435i in front, two D405s on the wrists."""
    cams = [SoftwareCamera("000000000001", "d435i"), SoftwareCamera("000000000002", "d405"),
            SoftwareCamera("000000000003", "d405")]
    yield SoftwareDeviceHub(cams), cams


@pytest.fixture
def feeder_factory() -> Iterator[Callable[..., FrameFeeder]]:
    feeders: list[FrameFeeder] = []

    def make(*args, **kwargs) -> FrameFeeder:  # type: ignore[no-untyped-def]
        f = FrameFeeder(*args, **kwargs).start()
        feeders.append(f)
        return f

    yield make
    for f in feeders:
        f.stop()


@pytest.fixture(autouse=True)
def _quiet_librealsense(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="a2w")
