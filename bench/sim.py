"""Simulated-rig speed: physics steps/s, three-camera render sets/s, real-time factor with the
expert, each next to a baseline measured in the same run (machines are noisy).

    .venv/bin/python bench/sim.py [--seconds 2] [--policy-size 256x192]

* physics: the full rig (two arms, grippers, box, IK controller and fault monitor hooks) against
  bare ``mj_step`` on the same model (the controller's overhead as a ratio);
* render: one set of the three views (left wrist, right wrist, front) at 640x480 and at the policy
  resolution, against one plain ``render()`` of the front camera at the same size (ratio ≈ 3
  means three views cost three single renders), and against the 30 Hz camera rate the real
  rig delivers (sets/s ÷ 30: above 1 keeps up with real time);
* real-time factor: the lift_box expert episode without cameras, and with the three cameras at
  the policy resolution and 30 fps (sim seconds per wall second).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "osmesa")

import mujoco  # noqa: E402

from a2w.arms.sim.backend import SimRigBackend  # noqa: E402
from a2w.cameras.sim.source import SimCameraSource  # noqa: E402
from a2w.cameras.source import CameraConfig  # noqa: E402
from a2w.msgs.arms import ArmTarget  # noqa: E402
from a2w.sim.episode import Episode  # noqa: E402
from a2w.sim.scene import SceneConfig  # noqa: E402
from a2w.sim.world import VIEW_CAMERAS, SimWorld  # noqa: E402

CAMERA_RATE = 30.0


def _rate(fn, seconds: float, batch: int = 1) -> float:
    """Calls of ``fn`` per wall second (each call counts ``batch``), for about ``seconds``."""
    fn()  # warm up (renderer creation, caches)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += batch
    return n / (time.perf_counter() - t0)


def physics(seconds: float) -> None:
    world = SimWorld(SceneConfig(task="lift_box"))
    m, d = world.model, world.data
    bare = _rate(lambda: mujoco.mj_step(m, d), seconds, 1)
    rig = SimRigBackend(world)
    rig.connect()
    # The controller hooks track a target (as while the arm node holds the arms at rest).
    rig.command(tuple(ArmTarget(st.tcp_pose, st.gripper_open) for st in rig.read()))
    full = _rate(lambda: world.step(20), seconds, 20)
    world.close()
    print(f"physics   bare mj_step           {bare:10.0f} steps/s  ({bare * world.dt:6.1f}x real time)")
    print(f"physics   rig + controller hooks {full:10.0f} steps/s  ({full * world.dt:6.1f}x real time)"
          f"  ratio to bare {full / bare:.2f}")


def render(seconds: float, sizes: list[tuple[int, int]]) -> None:
    for w, h in sizes:
        world = SimWorld(SceneConfig(task="lift_box", max_width=max(w, 640), max_height=max(h, 480)))
        single = _rate(lambda: world.render("front", w, h), seconds)
        sets = _rate(lambda: [world.render(c, w, h) for c in VIEW_CAMERAS.values()], seconds)
        world.close()
        print(f"render    {w}x{h}: single view {single:7.1f}/s; three-view sets {sets:7.1f}/s "
              f"= {1000 / sets:6.1f} ms/set; cost ratio set/single {single / sets:.2f}; "
              f"sets/s ÷ {CAMERA_RATE:.0f} Hz = {sets / CAMERA_RATE:.2f}")


def realtime(size: tuple[int, int]) -> None:
    for label, cams in (("no cameras", False), (f"3 cameras {size[0]}x{size[1]} @30fps", True)):
        ep = Episode("lift_box", 0, scene=SceneConfig(task="lift_box", max_width=max(size[0], 640),
                                                       max_height=max(size[1], 480)))
        srcs = []
        if cams:
            for view in VIEW_CAMERAS:
                s = SimCameraSource(CameraConfig(view, width=size[0], height=size[1], fps=CAMERA_RATE), ep.world)
                s.open()
                s.start()
                srcs.append(s)
        t0 = time.perf_counter()
        result = ep.run()
        wall = time.perf_counter() - t0
        sim_t = ep.world.time
        for s in srcs:
            s.close()
        ep.close()
        print(f"realtime  lift_box expert, {label}: {sim_t:.2f} sim s in {wall:.2f} wall s "
              f"= real-time factor {sim_t / wall:.2f} (success {result.success})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0, help="measuring time per figure")
    ap.add_argument("--policy-size", default="256x192", help="policy-resolution render size WxH")
    args = ap.parse_args()
    pw, ph = (int(v) for v in args.policy_size.lower().split("x"))
    print(f"MUJOCO_GL={os.environ['MUJOCO_GL']}, {os.cpu_count()} CPUs")
    physics(args.seconds)
    render(args.seconds, [(640, 480), (pw, ph)])
    realtime((pw, ph))


if __name__ == "__main__":
    main()
