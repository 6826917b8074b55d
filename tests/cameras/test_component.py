"""The camera node in the in-process host, fed by software-device cameras through librealsense."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import numpy as np
import pytest

from a2w.cameras import component as comp_mod
from a2w.cameras.component import CameraComponent, DriverContext
from a2w.cameras.pairing import FramePairer
from a2w.cameras.realsense import source as realsense
from a2w.cameras.realsense.softcam import SoftwareCamera, pattern
from a2w.cameras.source import CameraConfig
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.cameras import CameraFrame, CameraIntrinsics, DepthFrame, FrameMetadata
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from tests.support import wait_until

VIEWS = ["front", "left_wrist", "right_wrist"]


class Tap:
    """Collects what is published on a topic (synchronously, in the publisher's thread)."""

    def __init__(self, host: Host, topic: str, msg_type: type) -> None:
        self.msgs: list[Any] = []
        self._lock = threading.Lock()
        host.bus.topic(topic, msg_type, "test").taps.append(self._on)

    def _on(self, msg: Any) -> None:
        with self._lock:
            self.msgs.append(msg)

    def __len__(self) -> int:
        return len(self.msgs)


@pytest.fixture
def soft_driver(monkeypatch: pytest.MonkeyPatch, rig):
    hub, cams = rig

    def make(cfg: CameraConfig, ctx: DriverContext) -> realsense.RealSenseSource:
        ctx.shared["rs_lister"] = hub  # the RealSense driver, on the software devices
        return realsense.make_source(cfg, ctx)

    monkeypatch.setitem(comp_mod.DRIVERS, "soft", make)
    return hub, cams


def start(host: Host, **params: Any) -> CameraComponent:
    base = {"driver": "soft", "realsense.serials": ["000000000001", "000000000002", "000000000003"],
            "frame_timeout": 0.3, "retry_period": 0.1, "diagnostics_period": 0.1}
    base.update(params)
    c = host.add(NodeSpec(CameraComponent, "camera_node", params=base))
    host.start()
    return c  # type: ignore[return-value]


def latest_status(tap: Tap, view: str) -> DiagnosticStatus | None:
    for m in reversed(tap.msgs):
        if m.name.endswith("/" + view):
            return m
    return None


def test_publishes_three_views_with_info_metadata_and_pairs(soft_driver, feeder_factory) -> None:
    hub, cams = soft_driver
    host = Host(diagnostics_period=0)
    images = {v: Tap(host, f"/cameras/{v}/color/image_raw", CameraFrame) for v in VIEWS}
    meta = Tap(host, "/cameras/front/color/metadata", FrameMetadata)
    diag = Tap(host, "/diagnostics", DiagnosticStatus)
    feeder_factory(cams, offsets_ms=[6.0, 0.0, -3.0])
    try:
        start(host)
        assert wait_until(lambda: all(len(images[v]) >= 15 for v in VIEWS), 5.0)
        # Intrinsics travel with each frame (the ROS host derives its one camera_info per image).
        intr = images["front"].msgs[0].intrinsics
        assert isinstance(intr, CameraIntrinsics) and intr.width == 640 and intr.fx > 0
        assert meta.msgs[-1].domain == "global_time" and meta.msgs[-1].exposure_us > 8000
        pairer = FramePairer(VIEWS)
        for v in VIEWS:
            for f in images[v].msgs[-5:]:
                assert f.view == v and f.image.shape == (480, 640, 3)
                pairer.add(f)
        r = pairer.pair()
        assert r.ok and r.spread == pytest.approx(0.009, abs=1e-4)
        assert wait_until(lambda: all(latest_status(diag, v) is not None for v in VIEWS), 2.0)
        st = latest_status(diag, "front")
        assert st.values["serial"] == "000000000001"
        # A loaded 2-core machine may starve a worker for a frame period now and then.
        assert float(st.values["rate_hz"]) > 10 and int(st.values["drops"]) <= 2
    finally:
        host.shutdown()


def test_drops_and_jitter_are_measured(soft_driver) -> None:
    hub, cams = soft_driver
    host = Host(diagnostics_period=0)
    c = start(host, views=["front"], **{"realsense.serials": ["000000000001"]})
    try:
        cam = cams[0]
        t0 = time.time() * 1e3
        # Frames 1..20 with 3, 7 and 8 missing; frames 10 and 20 stamped 6 ms late.
        numbers = [n for n in range(1, 21) if n not in (3, 7, 8)]
        stats = c.cameras[0].stats
        for n in numbers:
            jitter = 6.0 if n % 10 == 0 else 0.0
            cam.push(pattern(640, 480, n), t0 + n * 1e3 / 30 + jitter, n)
            # Camera pace; wait for each frame so the newest-wins hand-off cannot skip one.
            wait_until(lambda: stats.frames >= numbers.index(n) + 1, 0.5, 0.002)
        assert wait_until(lambda: stats.frames == len(numbers), 3.0), stats.frames
        assert stats.drops == 3
        j50, j99 = stats.jitter()
        # Gaps from dropped frames are whole periods (no jitter); the late frames make three
        # intervals 6 ms off. So the median stays 0 and the tail is 6 ms.
        assert j50 == pytest.approx(0.0, abs=1e-4)
        assert j99 == pytest.approx(0.006, abs=2e-4)
        st = c.camera_status(c.cameras[0], time.time())
        assert st.values["drops"] == "3" and st.level == DiagnosticLevel.WARN and "jitter" in st.message
    finally:
        host.shutdown()


def test_silent_camera_is_flagged_and_recovers(soft_driver, feeder_factory) -> None:
    hub, cams = soft_driver
    host = Host(diagnostics_period=0)
    diag = Tap(host, "/diagnostics", DiagnosticStatus)
    feeder = feeder_factory(cams)
    try:
        start(host)
        # OK or WARN: the feeder's stamps jitter on a loaded machine, which may warn; never ERROR.
        assert wait_until(lambda: (s := latest_status(diag, "left_wrist")) is not None
                          and s.level < DiagnosticLevel.ERROR and s.values["frames"] != "0", 3.0)
        feeder.paused.add(cams[1].serial)
        assert wait_until(lambda: "stopped delivering" in latest_status(diag, "left_wrist").message, 3.0)
        assert latest_status(diag, "left_wrist").level == DiagnosticLevel.ERROR
        assert latest_status(diag, "front").level < DiagnosticLevel.ERROR  # the others keep going
        feeder.paused.clear()
        assert wait_until(lambda: latest_status(diag, "left_wrist").level < DiagnosticLevel.ERROR, 3.0), \
            latest_status(diag, "left_wrist")
    finally:
        host.shutdown()


def test_camera_plugged_in_after_start_is_picked_up(soft_driver, feeder_factory) -> None:
    hub, cams = soft_driver
    late = hub.unplug(cams[2].serial)
    host = Host(diagnostics_period=0)
    diag = Tap(host, "/diagnostics", DiagnosticStatus)
    right = Tap(host, "/cameras/right_wrist/color/image_raw", CameraFrame)
    feeder_factory(cams)
    try:
        start(host)
        assert wait_until(lambda: (s := latest_status(diag, "right_wrist")) is not None
                          and s.level == DiagnosticLevel.ERROR, 3.0)
        msg = latest_status(diag, "right_wrist").message
        assert "no device with serial 000000000003" in msg and "000000000001" in msg
        hub.plug(late)
        assert wait_until(lambda: len(right) >= 3, 3.0)
        assert wait_until(lambda: latest_status(diag, "right_wrist").level < DiagnosticLevel.ERROR, 3.0)
    finally:
        host.shutdown()


def test_depth_topic(soft_driver) -> None:
    hub, _ = soft_driver
    cam = SoftwareCamera("000000000011", "d405", depth=True)
    hub.plug(cam)
    host = Host(diagnostics_period=0)
    depth = Tap(host, "/cameras/front/aligned_depth_to_color/image_raw", DepthFrame)
    try:
        start(host, views=["front"], enable_depth=True, **{"realsense.serials": [cam.serial]})
        t0 = time.time() * 1e3
        n = 0
        deadline = time.monotonic() + 3.0
        while not depth.msgs and time.monotonic() < deadline:
            n += 1
            cam.push(pattern(640, 480, n), t0 + n * 1e3 / 30, n, depth_mm=np.full((480, 640), 400, np.uint16))
            time.sleep(1 / 30)
        assert depth.msgs, "no depth published"
        assert depth.msgs[0].depth[100, 100] == pytest.approx(0.4, abs=1e-4)
    finally:
        host.shutdown()


def test_parameter_errors_name_the_field(soft_driver) -> None:
    host = Host(diagnostics_period=0)
    with pytest.raises(ValueError, match="driver: unknown camera driver 'nope'.*playback.*realsense"):
        host.add(NodeSpec(CameraComponent, "a", params={"driver": "nope"}))
    with pytest.raises(ValueError, match="serials: need one per view"):
        host.add(NodeSpec(CameraComponent, "b", params={"realsense.serials": ["1"]}))
    with pytest.raises(ValueError, match="views: duplicate"):
        host.add(NodeSpec(CameraComponent, "c", params={"driver": "soft", "views": ["front", "front"]}))
    host.shutdown()


DRIVER_PARAMS = {"realsense": {"serials": ["1", "2", "3"], "allow_usb2": True},
                 "playback": {"dir": "/rec", "loop": False, "realtime": False, "restamp": False},
                 "sim": {"world_name": "w2"}}


def test_each_driver_declares_its_parameters_under_its_name(tmp_path) -> None:
    from a2w.host.params import build_params, load_param_file, specs

    names = {s.name for s in specs(comp_mod.CameraParams)}
    flat = {f"{d}.{k}" for d, group in DRIVER_PARAMS.items() for k in group}
    assert flat <= names
    # The node's own parameters stay flat; none of a driver's is also declared at the top level.
    assert not {n.rpartition(".")[2] for n in flat} & names
    assert {"driver", "views", "width", "height", "fps", "frame_timeout", "retry_period"} <= names
    for driver, group in DRIVER_PARAMS.items():
        body = "\n".join(f"      {k}: {v!r}".replace("'", '"').replace("True", "true").replace("False", "false")
                         for k, v in group.items())
        f = tmp_path / f"{driver}.yaml"
        f.write_text(f"camera_node:\n  ros__parameters:\n    driver: {driver}\n    {driver}:\n{body}\n")
        p = build_params(comp_mod.CameraParams, load_param_file(f, "/camera_node"), "/camera_node")
        assert vars(getattr(p, driver)) == group
    # The names before drivers had their own parameters are refused, naming the new ones.
    for old, new in (("serials", "realsense.serials"), ("allow_usb2", "realsense.allow_usb2"),
                     ("playback_dir", "playback.dir"), ("playback_loop", "playback.loop"),
                     ("playback_realtime", "playback.realtime"), ("playback_restamp", "playback.restamp")):
        with pytest.raises(ValueError, match=rf"unknown parameter\(s\) \['{old}'\].*'{re.escape(new)}'"):
            build_params(comp_mod.CameraParams, {old: DRIVER_PARAMS[new.split(".")[0]][new.split(".")[1]]}, "/c")


def test_registered_as_camera_node() -> None:
    from a2w.nodes import load
    assert load("camera_node") is CameraComponent


def test_stream_stats_rules() -> None:
    from a2w.cameras.stats import StreamStats
    s = StreamStats(fps=30.0)
    p = 1 / 30
    for i, n in enumerate([1, 2, 5, 6, 1, 2]):  # 3 and 4 lost; then the device restarted
        s.update(n, 10 + i * p + (2 * p if i >= 2 else 0), 100 + i * p)
    assert s.drops == 2 and s.resets == 1 and s.frames == 6
    assert s.jitter()[1] == pytest.approx(0.0, abs=1e-9)  # the 3-period gap is a drop, not jitter
    assert s.rate(100 + 5 * p) == pytest.approx(6 / (5 * p))
    assert s.silent_for(100 + 5 * p + 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fps"):
        StreamStats(0)


# -- two sources for one view (issue 12 item 12) ----------------------------------------------
FRONT = "/cameras/front/color/image_raw"


@pytest.mark.parametrize("second", [
    {"views": ["front"], "realsense.serials": ["000000000002"]},  # same view, another device
    {"views": ["front"], "realsense.serials": ["000000000001"]},  # same view, same device
    {"views": ["left_wrist", "front"], "realsense.serials": ["000000000002", "000000000003"]},  # second view clashes
    {"namespace": "/rig", "views": ["front"], "realsense.serials": ["000000000002"]},  # absolute prefix: same topic
    {"views": ["right_wrist"], "realsense.serials": ["000000000003"],  # remapped onto the first node's topic
     "remaps": {"/cameras/right_wrist/color/image_raw": FRONT}},
])
def test_second_camera_node_for_one_view_is_refused_naming_both(soft_driver, second) -> None:
    second = dict(second)
    ns, remaps = second.pop("namespace", "/"), second.pop("remaps", {})
    host = Host(diagnostics_period=0)
    base = {"driver": "soft", "frame_timeout": 0.3, "retry_period": 0.1}
    try:
        host.add(NodeSpec(CameraComponent, "cam_a", params={**base, "views": ["front"],
                                                             "realsense.serials": ["000000000001"]}))
        with pytest.raises(ValueError) as exc:
            host.add(NodeSpec(CameraComponent, "cam_b", namespace=ns, remaps=remaps, params={**base, **second}))
        msg = str(exc.value)
        fqn_b = ("/rig" if ns == "/rig" else "") + "/cam_b"
        assert "/cam_a" in msg and fqn_b in msg and FRONT in msg, msg
        topic = host.bus.get(FRONT)
        assert topic is not None and topic.publishers == ["/cam_a"]
    finally:
        host.shutdown()


def test_other_view_or_prefix_is_not_a_conflict(soft_driver) -> None:
    host = Host(diagnostics_period=0)
    base = {"driver": "soft", "frame_timeout": 0.3, "retry_period": 0.1}
    try:
        host.add(NodeSpec(CameraComponent, "cam_a", params={**base, "views": ["front"],
                                                             "realsense.serials": ["000000000001"]}))
        host.add(NodeSpec(CameraComponent, "cam_b", params={**base, "views": ["left_wrist"],
                                                             "realsense.serials": ["000000000002"]}))
        host.add(NodeSpec(CameraComponent, "cam_c", namespace="/spare",
                          params={**base, "views": ["front"], "realsense.serials": ["000000000003"],
                                  "topic_prefix": "cameras"}))  # relative: /spare/cameras/front/...
    finally:
        host.shutdown()


def test_a_publisher_appearing_later_is_flagged_naming_both(soft_driver, caplog) -> None:
    """Across processes the second publisher is seen only after discovery: the running node flags it."""
    host = Host(diagnostics_period=0)
    diag = Tap(host, "/diagnostics", DiagnosticStatus)
    try:
        start(host, views=["front"], **{"realsense.serials": ["000000000001"]})
        assert wait_until(lambda: (s := latest_status(diag, "front")) is not None and FRONT not in s.message, 3.0)
        intruder = host.add(NodeSpec(CameraComponent, "intruder", namespace="/other",
                                     params={"driver": "soft", "views": ["front"],
                                             "realsense.serials": ["000000000002"],
                                             "topic_prefix": "cameras"}))
        # It publishes where camera_node does (a remap the launch file forgot, another process...).
        intruder.node.create_publisher(FRONT, CameraFrame, comp_mod.QoS.sensor())
        assert wait_until(lambda: FRONT in latest_status(diag, "front").message, 3.0)
        status = latest_status(diag, "front")
        assert status.level == DiagnosticLevel.ERROR and status.name == "/camera_node/front"
        assert "/camera_node" in status.message and "/other/intruder" in status.message
        assert any("/other/intruder" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    finally:
        host.shutdown()
