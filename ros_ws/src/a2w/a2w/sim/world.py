"""The sim world: one MjModel/MjData, stepping, rendering, and a registry so that the sim drivers
(the camera node's and the arm node's) attach to the world the sim node owns. The registry is in
memory: those nodes must run in the sim node's process. Everything else (the expert node, a
monitor) gets the sim's facts from its topics (/clock, /sim/status, /sim/task).

Stepping order per physics step: pre-step hooks (controllers, fault injection) -> ``mj_step`` ->
post-step hooks (fault detection) -> the scenes of cameras whose frame is due are captured; once a
``step(n)`` call's physics is done and the lock released, they are rendered and delivered, in the
stepping thread (the GL context is thread-bound, rig_facts.md §5.4). The world's ``clock`` (a ``SimClock``)
is set to ``data.time`` after every step, so everything timed on it is deterministic for a seed.
All access to ``model``/``data`` from other threads goes through ``lock``.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Protocol

import mujoco  # after MUJOCO_GL: the a2w.sim package, always imported before this module, sets it
import numpy as np

from a2w.clock import SimClock
from a2w.geometry import pose_to_matrix, rpy_to_quaternion, wxyz_to_xyzw, xyzw_to_wxyz
from a2w.msgs.cameras import FRONT, LEFT_WRIST, RIGHT_WRIST, CameraIntrinsics
from a2w.msgs.common import Pose
from a2w.sim.scene import ARMS, N_JOINTS, READY_POSE_DEG, SceneConfig, build_mjcf

log = logging.getLogger(__name__)

Hook = Callable[["SimWorld"], None]

# View names (a2w.msgs.cameras) -> MuJoCo camera names.
VIEW_CAMERAS: dict[str, str] = {LEFT_WRIST: "left/wrist_cam", RIGHT_WRIST: "right/wrist_cam", FRONT: "front"}


class FrameSink(Protocol):
    """What the world renders for: a camera stream attached with ``attach_camera``."""

    camera: str
    width: int
    height: int
    period: float

    def deliver(self, image: np.ndarray, stamp: float) -> None: ...


@dataclass
class _Stream:
    sink: FrameSink
    next_due: float
    last_image: np.ndarray | None = None
    black: bool = False  # the camera_black fault, as captured for the frame being delivered


@dataclass(frozen=True)
class ArmIndex:
    """Where one arm lives in the model."""

    qpos: np.ndarray  # (7,) qpos addresses of the arm joints
    dof: np.ndarray  # (7,) dof addresses
    joints: np.ndarray  # (7,) joint ids
    actuators: np.ndarray  # (7,) actuator ids
    finger_qpos: np.ndarray  # (2,)
    finger_actuators: np.ndarray  # (2,)
    tcp_site: int
    base_body: int
    base_T: np.ndarray  # 4x4 world <- base


@dataclass(eq=False)
class SimWorld:
    """One simulated rig. Construct with a ``SceneConfig``; ``reset(seed)`` for a fresh episode."""

    config: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(self.config))
        self.data = mujoco.MjData(self.model)
        self.lock = threading.RLock()
        self.clock = SimClock()
        self.pre_step: list[Hook] = []
        self.post_step: list[Hook] = []
        self.on_reset: list[Hook] = []
        self._streams: list[_Stream] = []
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        # The streams' renderers by size, as many as views come due in one step() call: each
        # holds one captured scene until it is rendered outside the lock. _render_lock (taken
        # before lock) keeps close() from releasing them mid-render.
        self._stream_renderers: dict[tuple[int, int], list[mujoco.Renderer]] = {}
        self._render_lock = threading.Lock()
        # Injected camera faults by camera name: "freeze" or "black" (a2w.sim.faults).
        self.camera_effects: dict[str, str] = {}
        self.gripper_stuck: dict[str, bool] = {a: False for a in ARMS}
        self.steps = 0
        m = self.model
        self.arms: dict[str, ArmIndex] = {}
        for arm in ARMS:
            jids = np.array([m.joint(f"{arm}/joint{i + 1}").id for i in range(N_JOINTS)])
            fj = [m.joint(f"{arm}/finger_{s}_joint").id for s in ("l", "r")]
            base = m.body(f"{arm}/base").id
            base_T = pose_to_matrix(Pose(m.body_pos[base], wxyz_to_xyzw(m.body_quat[base])))
            self.arms[arm] = ArmIndex(
                qpos=m.jnt_qposadr[jids].copy(), dof=m.jnt_dofadr[jids].copy(), joints=jids,
                actuators=np.array([m.actuator(f"{arm}/act{i + 1}").id for i in range(N_JOINTS)]),
                finger_qpos=m.jnt_qposadr[fj].copy(),
                finger_actuators=np.array([m.actuator(f"{arm}/act_finger_{s}").id for s in ("l", "r")]),
                tcp_site=m.site(f"{arm}/tcp").id, base_body=base, base_T=base_T)
        # Which arm (0 left, 1 right, -1 none) each geom belongs to, and whether it is gripper.
        root = m.body_rootid[m.geom_bodyid]
        self.geom_arm = np.full(m.ngeom, -1, dtype=np.int64)
        for a, arm in enumerate(ARMS):
            self.geom_arm[root == self.arms[arm].base_body] = a
        flange = {m.body(f"{arm}/flange").id for arm in ARMS}
        grip_bodies = {b for b in range(m.nbody)
                       if b in flange or (m.body_parentid[b] in flange)}
        self.geom_is_gripper = np.array([int(m.geom_bodyid[g]) in grip_bodies for g in range(m.ngeom)])
        self.reset_arms()
        _live_worlds.add(self)

    # -- state ----------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return float(self.model.opt.timestep)

    @property
    def time(self) -> float:
        return float(self.data.time)

    def ready_q(self, arm: str) -> np.ndarray:
        return np.radians(READY_POSE_DEG[arm])

    def set_arm_q(self, arm: str, q: np.ndarray) -> None:
        """Teleport ``arm`` to joint positions ``q`` at rest, actuators targeting ``q``."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (N_JOINTS,):
            raise ValueError(f"q: shape must be ({N_JOINTS},), got {q.shape}")
        idx = self.arms[arm]
        with self.lock:
            self.data.qpos[idx.qpos] = q
            self.data.qvel[idx.dof] = 0.0
            self.data.ctrl[idx.actuators] = q
            mujoco.mj_forward(self.model, self.data)
            for hook in list(self.on_reset):
                hook(self)

    def reset_arms(self) -> None:
        with self.lock:
            for arm in ARMS:
                idx = self.arms[arm]
                self.data.qpos[idx.finger_qpos] = 0.0425
                self.data.ctrl[idx.finger_actuators] = 0.0425
                self.set_arm_q(arm, self.ready_q(arm))

    def set_object_pose(self, body: str, position: np.ndarray, yaw: float) -> None:
        """Place a free body at ``position`` with heading ``yaw``, at rest."""
        b = self.model.body(body)
        jnt = self.model.body_jntadr[b.id]
        if jnt < 0 or self.model.jnt_type[jnt] != mujoco.mjtJoint.mjJNT_FREE:
            raise ValueError(f"body: {body!r} is not a free body")
        qa, da = self.model.jnt_qposadr[jnt], self.model.jnt_dofadr[jnt]
        with self.lock:
            self.data.qpos[qa:qa + 3] = position
            self.data.qpos[qa + 3:qa + 7] = xyzw_to_wxyz(rpy_to_quaternion((0.0, 0.0, yaw)))
            self.data.qvel[da:da + 6] = 0.0
            mujoco.mj_forward(self.model, self.data)

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """Position and rotation matrix of ``body`` in the table frame."""
        with self.lock:
            b = self.model.body(body).id
            return self.data.xpos[b].copy(), self.data.xmat[b].reshape(3, 3).copy()

    # -- stepping -------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Advance ``n`` physics steps, rendering cameras that come due.

        The world lock is held for the physics and for capturing each due camera's scene at the
        step it comes due, not for the GL rendering of those scenes (milliseconds to tens of them
        per view, in software): a driver that reads or commands the arms (the arm node's control
        tick) then waits for the physics only. Frames are delivered when the ``n`` steps are done,
        with the stamp and the state of the step they came due at."""
        m, d = self.model, self.data
        due: list[tuple[_Stream, mujoco.Renderer | None, float]] = []  # None: a black or frozen frame
        with self._render_lock:
            with self.lock:
                for _ in range(n):
                    for hook in self.pre_step:
                        hook(self)
                    mujoco.mj_step(m, d)
                    self.steps += 1
                    for hook in self.post_step:
                        hook(self)
                    if self._streams:
                        self._capture_due(due)
                self.clock.set(d.time)
            for s, renderer, t in due:
                if renderer is not None:
                    image = renderer.render().copy()
                elif s.black or s.last_image is None:
                    image = np.zeros((s.sink.height, s.sink.width, 3), np.uint8)
                else:  # frozen: the last frame again
                    image = s.last_image
                s.last_image = image
                s.sink.deliver(image, t)

    def step_for(self, duration: float) -> None:
        """Advance by ``duration`` seconds of sim time (rounded to whole steps)."""
        self.step(max(0, int(round(duration / self.dt))))

    # -- cameras --------------------------------------------------------------------------
    def attach_camera(self, sink: FrameSink) -> None:
        """Render ``sink.camera`` every ``sink.period`` seconds of sim time from the next grid point."""
        self.check_camera(sink.camera, sink.width, sink.height)
        with self.lock:
            k = math.floor(self.time / sink.period + 1e-9) + 1
            self._streams.append(_Stream(sink, k * sink.period))

    def detach_camera(self, sink: FrameSink) -> None:
        with self.lock:
            self._streams = [s for s in self._streams if s.sink is not sink]

    def camera_names(self) -> list[str]:
        return [self.model.camera(i).name for i in range(self.model.ncam)]

    def check_camera(self, camera: str, width: int, height: int) -> None:
        if camera not in self.camera_names():
            raise LookupError(f"camera {camera!r} is not in the scene; known: {self.camera_names()}")
        if width > self.config.max_width or height > self.config.max_height:
            raise ValueError(
                f"width/height: {width}x{height} exceeds the offscreen buffer "
                f"{self.config.max_width}x{self.config.max_height} (SceneConfig.max_width/max_height)")

    def _capture_due(self, due: list[tuple[_Stream, mujoco.Renderer | None, float]]) -> None:
        """Under the lock: each stream whose frame is due gets its scene captured into a free
        renderer of its size (None: a frozen or black frame, nothing to render)."""
        t = self.time
        half = 0.5 * self.dt
        for s in self._streams:
            if t + half < s.next_due:
                continue
            # Stay on the nominal grid; if stepping jumped several periods, resynchronise.
            s.next_due += s.sink.period * max(1, math.floor((t + half - s.next_due) / s.sink.period) + 1)
            effect = self.camera_effects.get(s.sink.camera)
            rendered_before = s.last_image is not None or any(p is s for p, _, _ in due)
            s.black = effect == "black"
            if s.black or (effect == "freeze" and rendered_before):
                due.append((s, None, t))
                continue
            size = (s.sink.width, s.sink.height)
            pool = self._stream_renderers.setdefault(size, [])
            busy = sum(1 for _, r, _ in due if r is not None and (r.width, r.height) == size)
            if busy == len(pool):
                pool.append(mujoco.Renderer(self.model, s.sink.height, s.sink.width))
            renderer = pool[busy]
            renderer.update_scene(self.data, s.sink.camera)
            due.append((s, renderer, t))

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        """RGB uint8 image of ``camera`` at the current state. Call from the stepping thread."""
        self.check_camera(camera, width, height)
        with self.lock:
            r = self._renderers.get((width, height))
            if r is None:
                r = self._renderers[(width, height)] = mujoco.Renderer(self.model, height, width)
            r.update_scene(self.data, camera)
            return r.render().copy()

    def camera_intrinsics(self, camera: str, width: int, height: int) -> CameraIntrinsics:
        """Pinhole intrinsics of what ``render(camera, width, height)`` produces.

        MuJoCo's ``fovy`` is vertical with square pixels and the principal point at the image
        centre; in the pixel-centres-at-integers convention that centre is ((W-1)/2, (H-1)/2).
        """
        self.check_camera(camera, width, height)
        fovy = math.radians(float(self.model.cam_fovy[self.model.camera(camera).id]))
        f = (height / 2.0) / math.tan(fovy / 2.0)
        return CameraIntrinsics(width, height, f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    def camera_pose(self, camera: str) -> tuple[np.ndarray, np.ndarray]:
        """Position and rotation of the camera's *optical* frame (z forward, y down) in the table
        frame: R_optical = R_mujoco · diag(1, -1, -1) (rig_facts.md §3.3)."""
        with self.lock:
            c = self.model.camera(camera).id
            pos = self.data.cam_xpos[c].copy()
            rot = self.data.cam_xmat[c].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        return pos, rot

    def close(self) -> None:
        """Release the renderers (GL contexts). Idempotent."""
        with self._render_lock, self.lock:
            for r in [*self._renderers.values(), *(r for pool in self._stream_renderers.values() for r in pool)]:
                r.close()
            self._renderers.clear()
            self._stream_renderers.clear()
            self._streams.clear()
        _live_worlds.discard(self)


# Renderers left open at interpreter exit fail in their __del__ once PyOpenGL is torn down
# (OSMesa): close them while everything is still alive.
_live_worlds: "weakref.WeakSet[SimWorld]" = weakref.WeakSet()


def open_worlds() -> list[SimWorld]:
    """Worlds of this process not closed yet (and not garbage): what exit cleanup will close."""
    return list(_live_worlds)


@atexit.register
def _close_live_worlds() -> None:
    for world in list(_live_worlds):
        try:
            world.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


# -- running in the background -----------------------------------------------------------
def run_loop(world: SimWorld, stop: threading.Event, *, chunk: float = 1.0 / 200.0,
             realtime_factor: float = 1.0, on_chunk: Callable[[float], None] | None = None) -> None:
    """Step ``world`` in chunks of ``chunk`` sim seconds until ``stop`` is set.

    ``realtime_factor`` > 0 paces sim time to that multiple of wall time (it runs slower when
    stepping and rendering cannot keep up); 0 runs as fast as possible. ``on_chunk(t)`` is called
    after every chunk (the sim node publishes /clock there).
    """
    steps = max(1, int(round(chunk / world.dt)))
    t0_sim, t0_wall = world.time, time.monotonic()
    while not stop.is_set():
        world.step(steps)
        t = world.time
        if on_chunk is not None:
            on_chunk(t)
        if realtime_factor > 0:
            ahead = t0_wall + (t - t0_sim) / realtime_factor - time.monotonic()
            if ahead > 0:
                stop.wait(ahead)
            elif ahead < -0.5:
                # Far behind (rendering-bound): restart pacing rather than sprint to catch up.
                t0_sim, t0_wall = t, time.monotonic()


class SimRunner:
    """Steps a world in a background thread (tests, tools); the sim node uses ``run_loop`` itself."""

    def __init__(self, world: SimWorld, realtime_factor: float = 0.0, chunk: float = 1.0 / 200.0) -> None:
        self.world = world
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=run_loop, args=(world, self._stop),
            kwargs={"chunk": chunk, "realtime_factor": realtime_factor}, name="sim-runner", daemon=True)

    def start(self) -> "SimRunner":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def __enter__(self) -> "SimRunner":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- registry: one world per name per process --------------------------------------------
_registry: dict[str, SimWorld] = {}
_registry_lock = threading.Lock()
DEFAULT_WORLD = "sim"


def register_world(name: str, world: SimWorld) -> None:
    """Publish ``world`` under ``name``; ``ValueError`` if another world holds the name."""
    with _registry_lock:
        old = _registry.get(name)
        if old is not None and old is not world:
            raise ValueError(f"world_name: a sim world named {name!r} already exists in this process")
        _registry[name] = world


def get_world(name: str = DEFAULT_WORLD) -> SimWorld:
    """The world registered under ``name`` (by the sim node); ``LookupError`` explains the fix."""
    with _registry_lock:
        world = _registry.get(name)
    if world is None:
        raise LookupError(
            f"no sim world named {name!r} in this process (registered: {registered_worlds() or 'none'}): "
            f"the sim drivers reach the world of the sim_node with world_name={name!r} in memory, so "
            "it must run in the same process (one `a2w launch` of the sim launch file), started "
            "before the components that attach to it")
    return world


def registered_worlds() -> list[str]:
    """Names of the worlds registered in this process."""
    with _registry_lock:
        return sorted(_registry)


def unregister_world(name: str, world: SimWorld | None = None) -> None:
    with _registry_lock:
        if world is None or _registry.get(name) is world:
            _registry.pop(name, None)
