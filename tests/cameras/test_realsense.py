"""The RealSense source against the real librealsense frame path (software devices)."""

from __future__ import annotations

import time

import numpy as np
import pyrealsense2 as rs
import pytest

from a2w.cameras.pairing import FramePairer
from a2w.cameras.realsense.rsutil import CameraProfileError, StampMapper
from a2w.cameras.realsense.softcam import SoftwareCamera, SoftwareDeviceHub, pattern
from a2w.cameras.realsense.source import (
    CameraLinkError,
    DeviceInfo,
    RealSenseSource,
    SilenceAction,
    check_usb_link,
    decide_on_silence,
    normalize_serial,
    select_device,
)
from a2w.cameras.source import CameraConfig, CameraNotFound, CameraTimeout
from a2w.msgs.cameras import VIEW_NAMES
from tests.contracts import check_camera_source
from tests.support import wait_until


def source(hub: SoftwareDeviceHub, serial: str, view: str = "front", **kw) -> RealSenseSource:
    depth = kw.pop("depth", False)
    return RealSenseSource(CameraConfig(view, serial, depth=depth), devices=hub, **kw)


@pytest.mark.parametrize("index", [0, 1], ids=["d435i_rgb_sensor", "d405_stereo_module"])
def test_contract(rig, feeder_factory, index: int) -> None:
    hub, cams = rig
    feeder_factory([cams[index]])
    check_camera_source(lambda: source(hub, cams[index].serial), frames=5)


def test_frame_content_stamp_number_metadata_and_intrinsics(rig) -> None:
    hub, cams = rig
    cam = cams[1]
    src = source(hub, "_" + cam.serial, view="left_wrist")  # realsense-ros "_" prefix accepted
    src.open()
    src.start()
    try:
        # Factory intrinsics come through as CameraInfo fields.
        k = src.intrinsics
        assert (k.fx, k.cx, k.cy) == pytest.approx((cam.intrinsics.fx, cam.intrinsics.ppx, cam.intrinsics.ppy))
        assert k.distortion_model == "plumb_bob"
        assert k.distortion == pytest.approx(tuple(cam.intrinsics.coeffs))
        t0 = 1_700_000_000_000.0
        img = pattern(640, 480, 41)
        cam.push(img, t0, 41, exposure_us=3300)
        cap = src.wait_capture(2.0)
        assert cap.frame.frame_number == 41 and cap.frame.serial == cam.serial
        assert cap.frame.stamp == pytest.approx(t0 / 1e3)  # global time passes through, in seconds
        np.testing.assert_array_equal(cap.frame.image, img)
        assert cap.frame.frame_id == "cam_left_wrist_color_optical_frame"
        assert cap.meta is not None
        assert cap.meta.domain == "global_time" and cap.meta.exposure_us == 3300
        assert cap.meta.device_stamp_ms == pytest.approx(t0)
    finally:
        src.close()


def test_global_time_is_switched_on(rig) -> None:
    hub, cams = rig
    cams[0].color_sensor.set_option(rs.option.global_time_enabled, 0)
    with source(hub, cams[0].serial):
        assert cams[0].color_sensor.get_option(rs.option.global_time_enabled) == 1.0


def test_aligned_depth_in_metres(rig) -> None:
    hub, _ = rig
    cam = SoftwareCamera("000000000009", "d405", depth=True)
    hub.plug(cam)
    with source(hub, cam.serial, depth=True) as src:
        # The syncer judges waiting against host time for global-time frames: stamps must be "now".
        t0 = time.time() * 1e3
        for n in range(1, 4):
            cam.push(pattern(640, 480, n), t0 + n * 1e3 / 30, n,
                     depth_mm=np.full((480, 640), 250 * n, np.uint16))
        f = src.wait_frame(2.0)
        while f.frame_number < 3:  # the syncer may pass the very first colour frame alone
            f = src.wait_frame(2.0)
        assert f.depth is not None and f.depth.dtype == np.float32 and f.depth.shape == (480, 640)
        # Identity extrinsics and equal intrinsics: aligned depth keeps the value at the centre.
        n = f.frame_number
        assert f.depth[240, 320] == pytest.approx(0.25 * n, abs=1e-4)


def test_unknown_serial_lists_connected(rig) -> None:
    hub, cams = rig
    src = source(hub, "999")
    with pytest.raises(CameraNotFound) as e:
        src.open()
    for c in cams:
        assert c.serial in str(e.value)
    assert "D405" in str(e.value) and "999" in str(e.value)


def test_no_device_and_ambiguous_serial(rig) -> None:
    with pytest.raises(CameraNotFound, match="no RealSense device connected"):
        source(SoftwareDeviceHub(), "123").open()
    hub, _ = rig
    with pytest.raises(CameraNotFound, match="no serial configured and 3 devices"):
        source(hub, "").open()


def test_usb2_link_is_refused(rig) -> None:
    hub, _ = rig
    cam = SoftwareCamera("000000000007", "d435i", usb="2.1")
    hub.plug(cam)
    with pytest.raises(CameraLinkError, match=r"USB 2\.1.*USB 3"):
        source(hub, cam.serial).open()
    src = source(hub, cam.serial, allow_usb2=True)
    src.open()
    src.close()


def test_unsupported_profile_lists_offered(rig) -> None:
    hub, _ = rig
    cam = SoftwareCamera("000000000008", "d405", width=848, height=480, fps=15)
    hub.plug(cam)
    with pytest.raises(CameraProfileError) as e:
        source(hub, cam.serial).open()
    assert "640x480x30" in str(e.value) and "color 848x480x15 RGB8" in str(e.value)
    bgr = SoftwareCamera("000000000010", "d405", color_format=rs.format.bgr8)
    hub.plug(bgr)
    with pytest.raises(CameraProfileError, match="BGR8"):
        source(hub, bgr.serial).open()


def test_silent_camera_reports_then_recovers(rig, feeder_factory) -> None:
    hub, cams = rig
    feeder = feeder_factory([cams[0]])
    src = source(hub, cams[0].serial, frame_timeout=0.3, retry_period=0.2)
    with src:
        src.wait_frame(2.0)
        feeder.paused.add(cams[0].serial)
        with pytest.raises(CameraTimeout, match="stopped delivering"):
            while True:
                src.wait_frame(0.5)
        assert wait_until(lambda: src.restarts >= 1, 2.0), "no restart attempt"
        feeder.paused.clear()
        f = src.wait_frame(2.0)
        assert f.frame_number > 0
        assert wait_until(lambda: src.fault == "", 1.0)


def test_unplugged_camera_is_reconnected(rig, feeder_factory) -> None:
    hub, cams = rig
    feeder = feeder_factory([cams[2]])
    src = source(hub, cams[2].serial, view="right_wrist", frame_timeout=0.3, retry_period=0.1)
    with src:
        src.wait_frame(2.0)
        old = hub.unplug(cams[2].serial)
        feeder.paused.add(old.serial)
        assert wait_until(lambda: "unplugged" in src.fault, 3.0), src.fault
        with pytest.raises(CameraTimeout, match="unplugged"):
            src.wait_frame(0.2)
        # The same camera comes back as a new device (new USB enumeration).
        new = SoftwareCamera(old.serial, "d405")
        hub.plug(new)
        assert wait_until(lambda: src.fault == "" or src.restarts > 0, 3.0)
        deadline = time.monotonic() + 3.0
        got = None
        while got is None and time.monotonic() < deadline:
            new.push(pattern(640, 480, 5), time.time() * 1e3, 5)
            try:
                got = src.wait_frame(0.1)
            except CameraTimeout:
                pass
        assert got is not None and got.frame_number == 5
        assert src.fault == ""


def test_three_cameras_pair_through_librealsense(rig, feeder_factory) -> None:
    hub, cams = rig
    # Front 5 ms late, right wrist 4 ms early: stamps as the devices report them.
    feeder_factory(cams, offsets_ms=[5.0, 0.0, -4.0])
    views = ("front", "left_wrist", "right_wrist")
    srcs = [source(hub, c.serial, view=v) for c, v in zip(cams, views)]
    pairer = FramePairer(VIEW_NAMES)
    try:
        for s in srcs:
            s.open()
            s.start()
        for _ in range(4):
            for s in srcs:
                pairer.add(s.wait_frame(2.0))
        r = pairer.pair()
        assert r.ok, r.detail
        assert r.spread == pytest.approx(0.009, abs=1e-4)
        nums = {f.frame_number for f in r.observation.frames.values()}
        assert len(nums) == 1  # the same push cycle for all three
    finally:
        for s in srcs:
            s.close()


def test_hardware_clock_domain_is_anchored_to_host_time(rig) -> None:
    hub, cams = rig
    host_t = [500.0]
    src = RealSenseSource(CameraConfig("front", cams[0].serial), devices=hub, now=lambda: host_t[0])
    with src:
        cams[0].push(pattern(640, 480, 1), 10_000.0, 1, domain=rs.timestamp_domain.hardware_clock)
        a = src.wait_capture(2.0)
        host_t[0] = 600.0  # host time moves on; device time decides the next stamp
        cams[0].push(pattern(640, 480, 2), 10_033.0, 2, domain=rs.timestamp_domain.hardware_clock)
        b = src.wait_capture(2.0)
    assert a.meta.domain == "hardware_clock"
    assert a.frame.stamp == pytest.approx(500.0)
    assert b.frame.stamp - a.frame.stamp == pytest.approx(0.033)


# -- decision logic that software devices cannot drive (real unplug timing), tested directly --

def test_stamp_mapper_reanchors_on_device_clock_reset() -> None:
    host = [100.0]
    m = StampMapper(lambda: host[0], "cam")
    assert m(5000.0, "hardware_clock") == 100.0
    assert m(5100.0, "hardware_clock") == pytest.approx(100.1)
    host[0] = 200.0
    assert m(10.0, "hardware_clock") == 200.0  # went backwards: new anchor
    assert m(1_700_000_000_123.0, "global_time") == pytest.approx(1_700_000_000.123)


def test_decide_on_silence() -> None:
    assert decide_on_silence(False, True, 9.0, 1.0) is SilenceAction.WAIT_FOR_DEVICE
    assert decide_on_silence(True, True, 0.5, 1.0) is SilenceAction.WAIT
    assert decide_on_silence(True, True, 1.5, 1.0) is SilenceAction.RESTART
    assert decide_on_silence(True, False, 1.5, 1.0) is SilenceAction.RECONNECT


def test_selection_and_link_rules() -> None:
    devs = [DeviceInfo("1", "D435I", "3.2"), DeviceInfo("2", "D405", "2.1")]
    assert select_device(devs, "_2", "x") == 1
    assert select_device(devs[:1], "", "x") == 0
    assert normalize_serial(" _0123 ") == "0123" and normalize_serial("_ab") == "_ab"
    check_usb_link(devs[0], "front")
    check_usb_link(DeviceInfo("3"), "front")  # unknown descriptor passes
    with pytest.raises(CameraLinkError):
        check_usb_link(devs[1], "left_wrist")


def test_bad_config_names_the_field(rig) -> None:
    hub, _ = rig
    with pytest.raises(ValueError, match="frame_timeout"):
        RealSenseSource(CameraConfig("front"), devices=hub, frame_timeout=0)
