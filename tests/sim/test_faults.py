"""Fault injection: each named fault takes effect at its recorded onset and does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from a2w.cameras.sim.source import SimCameraSource
from a2w.cameras.source import CameraConfig
from a2w.sim.episode import Episode, run_episode
from a2w.sim.faults import FAULT_NAMES, FaultInjector, FaultSpec, random_faults
from a2w.sim.scene import SceneConfig
from a2w.sim.world import SimWorld

SEED = 0  # pick_cube seed 0 succeeds without faults (test_tasks covers the rate)


def _cube_episode(*faults: FaultSpec):
    return run_episode("pick_cube", SEED, faults=tuple(faults))


def test_onsets_are_recorded_on_the_step_they_take_effect() -> None:
    r = _cube_episode(FaultSpec("object_removed", 2.5, "cube"))
    (ev,) = r.fault_events
    assert ev.name == "object_removed" and ev.scheduled == 2.5
    assert abs(ev.onset - 2.5) <= 1.0 / 600 and not r.success


def test_object_slip_drops_a_held_cube() -> None:
    arm = run_episode("pick_cube", SEED).info["arm"]
    ep = Episode("pick_cube", SEED, faults=(FaultSpec("object_slip", 3.9, "cube"),))
    r = ep.run()
    z, _ = ep.task.object_pose(ep.world)
    ep.close()
    assert not r.success and z[2] < 0.05  # fell back to the table
    assert r.info["arm"] == arm


def test_gripper_fail_never_closes() -> None:
    clean = run_episode("pick_cube", SEED)
    arm = clean.info["arm"]
    a = 0 if arm == "left" else 1
    ep = Episode("pick_cube", SEED, faults=(FaultSpec("gripper_fail", 0.5, arm),))
    r = ep.run()
    assert not r.success
    assert ep.rig.read()[a].gripper_open > 0.95  # commanded closed, stayed open
    assert r.actions[-1, a * 7 + 6] == 0.0
    ep.close()


def test_arm_stall_stops_the_arm_at_the_obstacle() -> None:
    clean = run_episode("pick_cube", SEED)
    arm = clean.info["arm"]
    a = 0 if arm == "left" else 1
    ep = Episode("pick_cube", SEED, faults=(FaultSpec("arm_stall", 1.0, arm),))
    world = ep.world
    lowest = []

    def track(t: float) -> None:
        lowest.append((t, world.data.site_xpos[world.arms[arm].tcp_site][2]))

    r = ep.run(on_chunk=track)
    (ev,) = r.fault_events
    z_at_onset = min(lowest, key=lambda tz: abs(tz[0] - ev.onset))[1]
    lowest = [z for _, z in lowest]
    assert not r.success
    # The expert goes down to the cube (TCP z 0.02); the obstacle holds it about 1 cm below onset.
    assert min(lowest) > 0.05 and min(lowest) > z_at_onset - 0.03
    st = ep.rig.read()[a]
    assert r.error or st.faulted or np.linalg.norm(st.wrench[:3]) > 5.0
    ep.close()


@pytest.mark.parametrize("name", ["camera_black", "camera_freeze"])
def test_camera_faults_keep_the_stream_alive(name: str) -> None:
    world = SimWorld(SceneConfig(task="pick_cube", max_width=64, max_height=48))
    src = SimCameraSource(CameraConfig("front", width=64, height=48), world)
    src.open()
    src.start()
    injector = FaultInjector(world, [FaultSpec(name, 0.5, "front")]).attach()
    frames = []
    world.data.mocap_pos[0] = [0.0, 0.0, 0.1]  # something changes in view after the onset
    for k in range(30):
        if k == 20:
            world.data.mocap_pos[0] = [0.1, 0.1, 0.1]
        world.step(20)
        frames.append(src.latest())
    onset = injector.events[0].onset
    before = [f for f in frames if f.stamp < onset]
    after = [f for f in frames if f.stamp >= onset]
    assert before and after and all(b.stamp > a.stamp for a, b in zip(frames, frames[1:]))
    assert before[-1].image.mean() > 10
    if name == "camera_black":
        assert all(f.image.max() == 0 for f in after)
    else:
        assert all(np.array_equal(f.image, before[-1].image) for f in after)
    src.close()
    world.close()


def test_random_faults_are_seeded_and_validated() -> None:
    a = random_faults(7, FAULT_NAMES, "cube")
    assert a == random_faults(7, FAULT_NAMES, "cube")
    assert a != random_faults(8, FAULT_NAMES, "cube")
    assert all(1.0 <= s.onset <= 4.0 for s in a)
    with pytest.raises(ValueError, match="name"):
        FaultSpec("meteor", 1.0, "cube")
    with pytest.raises(ValueError, match="target"):
        FaultSpec("arm_stall", 1.0, "front")
