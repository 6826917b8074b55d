"""SimCameraSource: the camera contract, sim-clock stamps, and intrinsics that match the render."""

from __future__ import annotations

import time

import numpy as np
import pytest

from a2w.cameras.component import CameraComponent
from a2w.cameras.sim.source import SimCameraSource
from a2w.cameras.source import CameraConfig, CameraError, CameraNotFound
from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.cameras import CameraFrame
from a2w.sim.component import SimNode
from a2w.sim.scene import Marker, SceneConfig
from a2w.sim.world import SimRunner, SimWorld
from tests.contracts import check_camera_source

RED = (1.0, 0.0, 0.0, 1.0)


def _red_centroid(img: np.ndarray) -> tuple[float, float]:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    mask = (r > 120) & (g < 60) & (b < 60)
    assert mask.sum() > 8, "marker not visible"
    v, u = np.nonzero(mask)
    return float(u.mean()), float(v.mean())


def _project(world: SimWorld, camera: str, p: np.ndarray, w: int, h: int) -> tuple[float, float]:
    k = world.camera_intrinsics(camera, w, h)
    c, r = world.camera_pose(camera)
    x, y, z = r.T @ (p - c)
    assert z > 0
    return k.fx * x / z + k.cx, k.fy * y / z + k.cy


def test_contract() -> None:
    world = SimWorld(SceneConfig(task="none", max_width=128, max_height=96))
    runner = SimRunner(world).start()
    try:
        check_camera_source(lambda: SimCameraSource(CameraConfig("front", width=128, height=96), world))
    finally:
        runner.stop()
        world.close()


def test_frames_are_stamped_on_the_sim_clock_at_the_camera_rate() -> None:
    world = SimWorld(SceneConfig(task="none", max_width=64, max_height=48))
    src = SimCameraSource(CameraConfig("left_wrist", width=64, height=48, fps=15.0), world)
    src.open()
    src.start()
    world.step_for(1.0)
    frames = []
    f = src.latest()
    assert f is not None and f.stamp == pytest.approx(1.0, abs=1e-9)
    assert f.frame_number == 15  # 15 fps over one second of sim time
    world.step_for(0.2)
    frames.append(src.wait_frame(0.0 + 0.1))
    assert frames[0].stamp == pytest.approx(1.2, abs=1e-9)
    assert frames[0].intrinsics.fx == pytest.approx(385.0 * 64 / 640, rel=1e-6)
    src.close()
    world.close()


@pytest.mark.parametrize("width,height", [(640, 480), (320, 240)])
def test_front_render_matches_pinhole_projection(width: int, height: int) -> None:
    point = np.array([0.12, -0.18, 0.05])
    world = SimWorld(SceneConfig(task="none", markers=(Marker("p", tuple(point), 0.006, RED),)))
    img = world.render("front", width, height)
    u, v = _red_centroid(img)
    pu, pv = _project(world, "front", point, width, height)
    assert abs(u - pu) < 1.0 and abs(v - pv) < 1.0, f"rendered ({u:.2f}, {v:.2f}) vs projected ({pu:.2f}, {pv:.2f})"
    k = world.camera_intrinsics("front", width, height)
    assert k.fx == pytest.approx(610.0 * width / 640, rel=1e-6)  # D435i-like (rig_facts.md §0.7)
    world.close()


def test_wrist_render_matches_pinhole_projection() -> None:
    # A point in front of the left gripper, off-centre in the wrist image.
    probe = SimWorld(SceneConfig(task="none"))
    c, r = probe.camera_pose("left/wrist_cam")
    point = c + r @ np.array([0.03, 0.02, 0.25])
    probe.close()
    world = SimWorld(SceneConfig(task="none", markers=(Marker("p", tuple(point), 0.004, RED),)))
    img = world.render("left/wrist_cam", 640, 480)
    u, v = _red_centroid(img)
    pu, pv = _project(world, "left/wrist_cam", point, 640, 480)
    assert abs(u - pu) < 1.0 and abs(v - pv) < 1.0
    assert world.camera_intrinsics("left/wrist_cam", 640, 480).fy == pytest.approx(385.0, rel=1e-6)
    world.close()


def test_unknown_view_and_oversized_profile_are_clear_errors() -> None:
    world = SimWorld(SceneConfig(task="none", max_width=64, max_height=48))
    with pytest.raises(CameraNotFound, match="known"):
        SimCameraSource(CameraConfig("rear"), world).open()
    with pytest.raises(CameraError, match="offscreen"):
        SimCameraSource(CameraConfig("front", width=640, height=480), world).open()
    with pytest.raises(CameraNotFound, match="sim_node"):
        SimCameraSource(CameraConfig("front"), world_name="nowhere").open()
    world.close()


@pytest.mark.parametrize("name", ["nowhere", "sim2", "t_other"])
def test_a_missing_world_says_the_sim_runs_in_one_process(name: str) -> None:
    with pytest.raises(CameraNotFound) as exc:
        SimCameraSource(CameraConfig("front"), world_name=name).open()
    msg = str(exc.value)
    assert f"world_name={name!r}" in msg and "same process" in msg and "a2w launch" in msg, msg


def test_the_camera_node_streams_the_world_its_sim_driver_names() -> None:
    host = Host(diagnostics_period=0)
    frames: list[CameraFrame] = []
    host.bus.topic("/cameras/front/color/image_raw", CameraFrame, "test").taps.append(frames.append)
    host.add_component(SimNode, "sim", task="none", realtime_factor=0.0, max_width=64, max_height=48,
                       world_name="t_named")
    cameras = host.add(NodeSpec(CameraComponent, "camera_node", params={
        "driver": "sim", "views": ["front"], "width": 64, "height": 48, "sim.world_name": "t_named"}))
    host.start()
    try:
        deadline = time.monotonic() + 30.0
        while not frames and time.monotonic() < deadline:
            time.sleep(0.02)
        assert frames and frames[0].serial == "sim:front" and frames[0].image.shape == (48, 64, 3)
        status = cameras.camera_status(cameras.cameras[0], time.time())
        assert status.values["serial"] == "sim:front" and status.values["driver"] == "sim"
    finally:
        host.shutdown()
