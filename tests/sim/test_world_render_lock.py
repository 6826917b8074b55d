"""The world lock guards the physics, not the GL rendering of due camera frames: a driver reading or
commanding the arms (the arm node's control tick) waits for the physics only (issue 14 item 8).
Frames still show the state of the step they came due at, several views due at once included."""

from __future__ import annotations

import threading

import mujoco
import numpy as np

from a2w.sim.scene import SceneConfig
from a2w.sim.world import VIEW_CAMERAS, SimWorld

W, H = 64, 48


class Sink:
    def __init__(self, camera: str, period: float) -> None:
        self.camera, self.width, self.height, self.period = camera, W, H, period
        self.frames: list[tuple[np.ndarray, float]] = []

    def deliver(self, image: np.ndarray, stamp: float) -> None:
        self.frames.append((image, stamp))


def test_due_frames_render_outside_the_world_lock_with_the_state_they_came_due_at(monkeypatch) -> None:
    world = SimWorld(SceneConfig(max_width=W, max_height=H))
    try:
        sinks = [Sink(cam, 10 * world.dt) for cam in VIEW_CAMERAS.values()]  # all three due together
        for s in sinks:
            world.attach_camera(s)
        lock_free: list[bool] = []
        stepping = threading.Event()
        render = mujoco.Renderer.render

        def checked_render(self, *args, **kwargs):
            if stepping.is_set():
                # Another thread (the arm node's) must get the lock while a frame renders.
                got: list[bool] = []

                def other() -> None:
                    ok = world.lock.acquire(timeout=0.5)
                    got.append(ok)
                    if ok:
                        world.lock.release()

                t = threading.Thread(target=other)
                t.start()
                t.join()
                lock_free.append(got[0])
            return render(self, *args, **kwargs)

        monkeypatch.setattr(mujoco.Renderer, "render", checked_render)
        for _ in range(25):
            before = [len(s.frames) for s in sinks]
            stepping.set()
            world.step(1)  # one step: a frame due in it shows the state after it
            stepping.clear()
            for s, n in zip(sinks, before):
                for image, stamp in s.frames[n:]:
                    assert stamp == world.time
                    np.testing.assert_array_equal(image, world.render(s.camera, W, H))
        assert all(len(s.frames) == 2 for s in sinks), [len(s.frames) for s in sinks]
        assert lock_free and all(lock_free), lock_free
    finally:
        world.close()
