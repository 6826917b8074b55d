"""Fault injection for monitor tests: named, seeded events with a recorded onset time.

Each fault is a ``FaultSpec`` (name, onset in sim seconds, target). A ``FaultInjector`` attached
to a world applies it on the first physics step at or after its onset and records a
``FaultEvent`` with the actual sim time, so a monitor's detection delay can be measured.

Names:
* ``object_slip``: the task object's grip turns slippery (friction 0.002 wins over the pads'), so a
  held object slides out;
* ``object_removed``: the task object vanishes from the table (moved onto the floor, out of view);
* ``camera_freeze`` / ``camera_black``: a camera keeps delivering frames (stamps advance) whose
  image is the last one before the onset / all black;
* ``arm_stall``: an obstacle appears 1 cm beyond the arm's fingertips along the tool axis, so
  the arm stalls against it (and may fault with excessive force);
* ``gripper_fail``: the arm's gripper stops moving: it fails to close (or open) from then on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from a2w.msgs.sim import FaultEvent
from a2w.sim.scene import ARMS, PAD_HALF
from a2w.sim.world import VIEW_CAMERAS, SimWorld

log = logging.getLogger(__name__)

FAULT_NAMES: tuple[str, ...] = ("object_slip", "object_removed", "camera_freeze", "camera_black",
                                "arm_stall", "gripper_fail")
_TARGET_KIND = {"object_slip": "object", "object_removed": "object", "camera_freeze": "view",
                "camera_black": "view", "arm_stall": "arm", "gripper_fail": "arm"}
SLIP_FRICTION = 0.002  # 2 x 60 N x 0.002 = 0.24 N of grip: less than any object weighs
OBJECT_PARKING = np.array([0.6, 1.2, -0.70])  # on the floor, away from the table and cameras


@dataclass(frozen=True)
class FaultSpec:
    """``target``: an arm (left/right) for arm faults, a view (front, left_wrist, right_wrist)
    for camera faults, a body name for object faults."""

    name: str
    onset: float
    target: str

    def __post_init__(self) -> None:
        if self.name not in FAULT_NAMES:
            raise ValueError(f"name: unknown fault {self.name!r}; known: {list(FAULT_NAMES)}")
        if not self.onset >= 0:
            raise ValueError(f"onset: must be >= 0 s, got {self.onset!r}")
        kind = _TARGET_KIND[self.name]
        if kind == "arm" and self.target not in ARMS:
            raise ValueError(f"target: {self.name} needs an arm {list(ARMS)}, got {self.target!r}")
        if kind == "view" and self.target not in VIEW_CAMERAS:
            raise ValueError(f"target: {self.name} needs a view {list(VIEW_CAMERAS)}, got {self.target!r}")


def random_faults(seed: int, names: tuple[str, ...] | list[str], object_name: str,
                  window: tuple[float, float] = (1.0, 4.0),
                  arms: tuple[str, ...] | list[str] = ARMS) -> list[FaultSpec]:
    """One spec per name with a seeded onset in ``window`` and a seeded target; an arm fault's target is
    one of ``arms`` (the arms the task moves: a fault on an idle arm changes nothing)."""
    if not arms or any(a not in ARMS for a in arms):
        raise ValueError(f"arms: a non-empty subset of {list(ARMS)}, got {list(arms)}")
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        if name not in FAULT_NAMES:
            raise ValueError(f"faults: unknown fault {name!r}; known: {list(FAULT_NAMES)}")
        kind = _TARGET_KIND[name]
        onset = float(rng.uniform(*window))
        target = {"object": object_name,
                  "view": str(rng.choice(list(VIEW_CAMERAS))),
                  "arm": str(rng.choice(list(arms)))}[kind]
        out.append(FaultSpec(name, round(onset, 4), target))
    return out


class FaultInjector:
    """Applies ``specs`` to ``world`` at their onsets (a post-step hook once ``attach()``ed)."""

    def __init__(self, world: SimWorld, specs: list[FaultSpec]) -> None:
        self.world = world
        self.pending = sorted(specs, key=lambda s: s.onset)
        self.events: list[FaultEvent] = []

    def attach(self) -> "FaultInjector":
        self.world.post_step.append(self)
        return self

    def detach(self) -> None:
        if self in self.world.post_step:
            self.world.post_step.remove(self)

    def __call__(self, world: SimWorld) -> None:
        # A post-step hook: a fault due now affects the frames rendered at this time and the
        # physics from the next step on.
        while self.pending and self.pending[0].onset <= world.time + 0.5 * world.dt:
            spec = self.pending.pop(0)
            detail = self._apply(spec)
            ev = FaultEvent(spec.name, spec.target, world.time, spec.onset, detail)
            self.events.append(ev)
            log.info("injected fault %s on %s at t=%.4f s (%s)", spec.name, spec.target, ev.onset, detail)

    def _apply(self, spec: FaultSpec) -> str:
        w, m, d = self.world, self.world.model, self.world.data
        if spec.name == "object_slip":
            for g in np.flatnonzero(m.geom_bodyid == m.body(spec.target).id):
                # Higher priority: its friction is used for every contact, pads included.
                m.geom_priority[g] = 2
                m.geom_friction[g] = (SLIP_FRICTION, 0.0, 0.0)
            return f"object friction {SLIP_FRICTION}"
        if spec.name == "object_removed":
            w.set_object_pose(spec.target, OBJECT_PARKING, 0.0)
            return f"object moved to {OBJECT_PARKING.tolist()}"
        if spec.name in ("camera_freeze", "camera_black"):
            w.camera_effects[VIEW_CAMERAS[spec.target]] = spec.name.split("_")[1]
            return VIEW_CAMERAS[spec.target]
        if spec.name == "gripper_fail":
            w.gripper_stuck[spec.target] = True
            width = float(d.qpos[w.arms[spec.target].finger_qpos].sum())
            return f"gripper jammed at {width * 1000:.0f} mm"
        # arm_stall: a block 1 cm beyond the fingertips, across the tool axis.
        site = w.arms[spec.target].tcp_site
        tool_z = d.site_xmat[site].reshape(3, 3)[:, 2]
        half_h = float(m.geom_size[m.geom("obstacle_geom").id][2])
        centre = d.site_xpos[site] + tool_z * (PAD_HALF[2] + 0.01 + half_h)
        d.mocap_pos[m.body("obstacle").mocapid[0]] = centre
        return f"obstacle at {np.round(centre, 3).tolist()}"
