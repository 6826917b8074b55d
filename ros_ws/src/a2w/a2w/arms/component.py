"""The arm node: a RigBackend behind ownership, interpolation, safety clamps, watchdog and faults.

Same component for the Flexiv arms and the simulated rig: ``backend`` picks the driver, whose own
parameters are the group of that name (``flexiv.*``, ``sim.*``; ``DRIVERS``). The node
is the wiring: the backend and its worker threads (connect, recovery: everything slow, so
callbacks never block), the topics, services and timers. What to do is decided by the pure
supervisor (``a2w.arms.supervisor``: motion states, target acceptance, ownership, watchdog,
freshness, faults and recovery), whose ``Commander`` makes the commands (``a2w.arms.commander``).

Per control tick (the backend's command rate): read both arms, let the supervisor react to
faults and run the watchdog, and stream the step it returns, one target per arm. A separate
timer publishes ``RigState`` on ``/arms/state`` and ``/joint_states`` at ``state_rate``
(>= 100 Hz), each read once, stamped with when it was read; an arm whose data stops updating for
``state_timeout`` is published with ``fresh=False``, and is a communication fault while commands
stream (when stopped, a backend may legitimately block its state, e.g. in a robot's Stop).
Targets and states are in each arm's base frame (a2w.msgs.arms); internally poses are in the
world (table) frame, converted with the base poses (``kinematics.RigFrames``).
"""

from __future__ import annotations

import collections
import importlib
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from a2w.arms import kinematics
from a2w.arms.backend import ArmError, ArmFaultError, Fault, FaultKind, RecoveryRefused, RigBackend
from a2w.arms.commander import Commander
from a2w.arms.flexiv.params import FlexivParams
from a2w.arms.kinematics import RigFrames
from a2w.arms.ownership import Ownership
from a2w.arms.safety import CartesianCommand, MotionLimits, WorkspaceBox
from a2w.arms.sim.params import SimRigParams
from a2w.arms.supervisor import Effect, Motion, Supervisor
from a2w.clock import RateMeter
from a2w.geometry import xyz_rpy_to_matrix
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param, specs
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmsStatus, ArmState, ControlMode, JointStates, RigState, RigTarget
from a2w.msgs.services import Outcome, RecoverRequest, SetControlModeRequest, SetControlModeResponse
from a2w.rig.extrinsics import load_extrinsics, matrix_pose6, resolve_pose, same_pose

TARGET_TOPIC = "/arms/target"
STATE_TOPIC = "/arms/state"
JOINT_STATES_TOPIC = "/joint_states"
STATUS_TOPIC = "/arms/status"
SET_MODE_SERVICE = "/arms/set_mode"
RECOVER_SERVICE = "/arms/recover"

# The drivers: backend name -> factory of its RigBackend from its parameter group, imported only
# when chosen (the sim driver loads MuJoCo).
DRIVERS = {
    "flexiv": "a2w.arms.flexiv.backend:backend_from_params",
    "sim": "a2w.arms.sim.backend:backend_from_params",
}


@dataclass
class ArmNodeParams(Params):
    backend: str = param("sim", "rig backend: the driver whose parameter group is used", choices=tuple(DRIVERS))
    state_rate: float = param(100.0, "RigState and /joint_states publish rate (Hz)", low=100.0, high=1000.0)
    initial_mode: str = param("hold", "mode after connecting", choices=("idle", "hold"))
    hold_after: float = param(0.2, "watchdog: no fresh target for this long (s) -> hold", low=0.01)
    stop_after: float = param(2.0, "watchdog: no fresh target for this long (s) -> stop", low=0.02)
    stale_after: float = param(0.25, "reject targets stamped more than this in the past (s)", low=0.0)
    max_lead: float = param(2.5, "reject targets stamped more than this in the future (s)", low=0.0)
    max_linear_vel: float = param(0.4, "TCP speed limit (m/s)", low=1e-3, high=2.0)
    max_angular_vel: float = param(1.5, "TCP angular speed limit (rad/s)", low=1e-3, high=10.0)
    max_linear_acc: float = param(1.5, "TCP acceleration limit (m/s^2)", low=1e-3, high=100.0)
    max_angular_acc: float = param(6.0, "TCP angular acceleration limit (rad/s^2)", low=1e-3, high=1000.0)
    gripper_rate: float = param(1.0, "gripper_open change limit (1/s)", low=1e-3, high=100.0)
    gripper_tolerance: float = param(
        0.1, "gripper tracking: |commanded - measured| gripper_open tolerated (fraction of the stroke)",
        low=0.01, high=1.0)
    gripper_jam_after: float = param(
        0.5, "gripper tracking: beyond the tolerance with no movement toward the command for this "
        "long (s) -> jam warning (a2w.arms.gripper_watch)", low=0.05, high=10.0)
    state_timeout: float = param(
        0.25, "an arm whose state stops updating (read fails or its stamp freezes) for this long (s) "
        "is published with fresh=False; while commands stream it is lost: communication fault",
        low=0.01, high=5.0)
    # TRI's gripper box in the table frame (rig_facts.md §4.1), its floor raised from 0.015 to 0.03:
    # our TCP is the 2F-85's pad centre, the pad tips reach 12.5 mm lower, and Cartesian tracking
    # dips a few mm in a fast sideways move (sim: 2-5 mm), so TRI's floor drags the pads on the table.
    left_workspace_lo: list[float] = param([-0.375, -0.70, 0.03], "left TCP box, world min (m)")
    left_workspace_hi: list[float] = param([0.20, 0.70, 0.90], "left TCP box, world max (m)")
    right_workspace_lo: list[float] = param([-0.375, -0.70, 0.03], "right TCP box, world min (m)")
    right_workspace_hi: list[float] = param([0.20, 0.70, 0.90], "right TCP box, world max (m)")
    # Base poses world <- base as x, y, z, roll, pitch, yaw; TRI's layout by default.
    left_base_pose: list[float] = param(list(kinematics.TRI_BASE_POSES["left"]), "left base in world")
    right_base_pose: list[float] = param(list(kinematics.TRI_BASE_POSES["right"]), "right base in world")
    calibration: str = param("", "calibration folder (calibration/<rig>/): the base poses from its bases.yaml "
                             "('' = the base pose parameters); a base pose parameter set to another value than "
                             "the calibration's is refused, and so is a calibration that disagrees with a "
                             "backend that knows its bases (the sim scene)")
    capsule_radii: list[float] = param(
        [0.08, 0.07, 0.06, 0.05, 0.06],
        "capsule radii (m): base-shoulder, upper arm, forearm, wrist-flange, flange-TCP (gripper)")
    min_arm_distance: float = param(0.05, "stop a step that brings the arms' capsules closer than this (m)",
                                    low=0.0)
    # Each driver's own parameters, under its name (``flexiv.left_serial``); ``backend`` picks one.
    flexiv: FlexivParams = param(FlexivParams(), "the Flexiv driver (a2w.arms.flexiv)")
    sim: SimRigParams = param(SimRigParams(), "the simulated arms (a2w.arms.sim)")


def _base_matrix(v: list[float], name: str) -> np.ndarray:
    if len(v) != 6 or not all(math.isfinite(x) for x in v):
        raise ValueError(f"{name}: need 6 finite values x, y, z, roll, pitch, yaw, got {v}")
    return xyz_rpy_to_matrix(v[:3], v[3:])


class ArmNode(Component):
    """Arm driver node (exec name ``arm_node``)."""

    Params = ArmNodeParams

    def __init__(self, node: NodeHandle, params: ArmNodeParams) -> None:
        super().__init__(node, params)
        p = params
        self.clock = node.clock
        # Stamps are the clock's (wall time on a rig); durations (watchdog, freshness, rates) run
        # on its monotonic timeline, so a wall-clock step neither trips nor silences them.
        self.timeline = node.clock.timeline()
        limits = MotionLimits(p.max_linear_vel, p.max_angular_vel, p.max_linear_acc,
                              p.max_angular_acc, p.gripper_rate)
        self.workspace = (WorkspaceBox(p.left_workspace_lo, p.left_workspace_hi),
                          WorkspaceBox(p.right_workspace_lo, p.right_workspace_hi))
        poses = {"left": p.left_base_pose, "right": p.right_base_pose}
        ext = None
        if p.calibration:
            # Before the backend is built: a bad calibration must not leave worker processes behind.
            ext = load_extrinsics(p.calibration)
            defaults = {s.name: s.default for s in specs(ArmNodeParams)}
            poses = {a: resolve_pose(f"{a}_base_pose", poses[a], defaults[f"{a}_base_pose"], ext.bases[a],
                                     f"{p.calibration}/bases.yaml {a}") for a in ("left", "right")}
        self.base_T = (_base_matrix(poses["left"], "left_base_pose"),
                       _base_matrix(poses["right"], "right_base_pose"))
        module, _, factory = DRIVERS[p.backend].partition(":")
        self.backend: RigBackend = getattr(importlib.import_module(module), factory)(getattr(p, p.backend))
        self.dt = 1.0 / float(self.backend.command_rate)
        known = [self.backend.base_pose(i) for i in range(2)]
        if known[0] is not None and known[1] is not None:
            # A backend that knows its bases (the sim scene) is the truth; the parameters are for
            # backends that do not (the real arms: calibration).
            known_T = (np.asarray(known[0], float), np.asarray(known[1], float))
            if ext is not None:
                for arm, k, c in zip(("left", "right"), known_T, self.base_T):
                    if not same_pose(k, c):
                        self.backend.close()
                        cal, real = (", ".join(f"{x:.6g}" for x in matrix_pose6(m)) for m in (c, k))
                        raise ValueError(
                            f"calibration {p.calibration}: the {arm} base ({cal}) is not where the {p.backend} "
                            f"backend has it ({real}); the sim rig's calibration is calibration/sim")
            self.base_T = known_T
        self.frames = RigFrames(self.base_T)
        commander = Commander(self.frames, limits, self.workspace, p.capsule_radii, p.min_arm_distance,
                              self.dt, self.log)
        self.supervisor = Supervisor(
            commander, initial_mode=ControlMode(p.initial_mode), hold_after=p.hold_after,
            stop_after=p.stop_after, stale_after=p.stale_after, max_lead=p.max_lead,
            state_timeout=p.state_timeout, gripper_tolerance=p.gripper_tolerance,
            gripper_jam_after=p.gripper_jam_after, logger=self.log)
        self.commands_sent = 0
        self.command_rate = RateMeter()
        self.state_rate = RateMeter()
        self._closed = False
        self._backend_lock = threading.Lock()  # connect/recover worker vs. callbacks
        self._published_read = -math.inf  # the read behind the last /arms/state message
        # How late targets arrive (clock now - stamp when received): the delivery latency the
        # stale_after check sees, for the diagnostics and the shutdown line.
        self.target_age: collections.deque[float] = collections.deque(maxlen=4096)

        self.state_pub = node.create_publisher(STATE_TOPIC, RigState, QoS.sensor())
        self.joint_pub = node.create_publisher(JOINT_STATES_TOPIC, JointStates, QoS.sensor())
        self.status_pub = node.create_publisher(STATUS_TOPIC, ArmsStatus, QoS.latched_state())
        node.create_subscription(TARGET_TOPIC, RigTarget, self._on_target, QoS.reliable(10))
        node.create_service(SET_MODE_SERVICE, SetControlModeRequest, self._on_set_mode)
        node.create_service(RECOVER_SERVICE, RecoverRequest, self._on_recover)
        self.control_timer = node.create_timer(self.dt, self._control_tick)
        self.state_timer = node.create_timer(1.0 / p.state_rate, self._state_tick)
        node.start_worker("connect", self._connect)

    # -- the supervisor's state, as the node shows it ----------------------------------------
    @property
    def motion(self) -> Motion:
        return self.supervisor.motion

    @property
    def message(self) -> str:
        return self.supervisor.message

    @property
    def ownership(self) -> Ownership:
        return self.supervisor.ownership

    @property
    def faults(self) -> list[Fault]:
        return self.supervisor.faults

    @property
    def recovery_ok(self) -> bool | None:
        return self.supervisor.recovery_ok

    @property
    def warnings(self) -> dict[int, str]:
        return self.supervisor.warnings

    @property
    def last_reject(self) -> str:
        return self.supervisor.last_reject

    @property
    def cmd(self) -> list[CartesianCommand | None]:
        return self.supervisor.commander.cmd

    def _apply(self) -> None:
        """Carry out what the last supervisor calls asked for."""
        fx = self.supervisor.take_effects()
        if Effect.STOP in fx:
            try:
                self.backend.stop()
            except ArmError as exc:
                self.log.error("backend stop failed: %s", exc)
        if Effect.STATUS in fx:
            self.status_pub.publish(self.supervisor.status(self.clock.now()))
        if Effect.RECOVER in fx:
            self.node.start_worker("recover", self._recover)

    # -- connection -----------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            with self._backend_lock:
                self.backend.connect()
                states = self.backend.read()
        except ArmError as exc:
            self.log.error("arm backend did not come up: %s", exc)
            # Post the text, not ``exc``: the name is unbound when this block ends, before the post runs.
            message = f"connect failed: {exc}"
            self.node.post(lambda: self._disconnected(message))
            return
        self.node.post(lambda: self._connected(states))

    def _disconnected(self, message: str) -> None:
        self.supervisor.disconnected(message)
        self._apply()

    def _connected(self, states: tuple[ArmState, ArmState]) -> None:
        if self._closed:
            return
        self.supervisor.connected(states, self.clock.now(), self.timeline.now())
        self._apply()

    def _read(self) -> tuple[ArmState, ArmState]:
        """Read both arms (the supervisor notes when each arm's data last changed). ``ArmError``
        if the read fails."""
        states = self.backend.read()
        self.supervisor.observe(states, self.clock.now(), self.timeline.now())
        return states

    # -- requests -------------------------------------------------------------------------
    def _on_set_mode(self, req: SetControlModeRequest) -> SetControlModeResponse:
        resp = self.supervisor.set_mode(req, self.clock.now(), self.timeline.now())
        self._apply()
        return resp

    def _on_target(self, msg: RigTarget) -> None:
        now = self.clock.now()
        self.target_age.append(now - float(msg.stamp))
        self.supervisor.target(msg, now, self.timeline.now())
        self._apply()

    # -- control loop ---------------------------------------------------------------------
    def _control_tick(self) -> None:
        sup = self.supervisor
        if self._closed or not sup.supervising:
            return
        now = self.clock.now()
        try:
            states = self._read()
        except ArmError as exc:
            sup.fault([Fault(-1, FaultKind.COMMUNICATION, f"reading the arms' state failed: {exc}")], now)
            self._apply()
            return
        step = sup.tick(states, self._backend_faults(), now, sup.last_read)
        self._apply()
        if step is None:
            return
        try:
            self.backend.command(step.targets)
        except ArmFaultError as exc:
            sup.fault([exc.fault], now)
            self._apply()
            return
        except ArmError as exc:
            sup.fault([Fault(-1, FaultKind.COMMUNICATION, str(exc))], now)
            self._apply()
            return
        self.commands_sent += 1
        self.command_rate.mark(self.timeline.now())
        sup.commanded(step, states, sup.last_read)
        self._apply()

    def _backend_faults(self) -> list[Fault]:
        return [f for f in (self.backend.fault(0), self.backend.fault(1)) if f is not None]

    # -- recovery -------------------------------------------------------------------------
    def _on_recover(self, req: RecoverRequest) -> Outcome:
        out = self.supervisor.recover(self._backend_faults())
        self._apply()
        return Outcome(True, f"{out.message} (watch {STATUS_TOPIC})") if out.success else out

    def _recover(self) -> None:
        try:
            with self._backend_lock:
                self.backend.clear_fault()
                states = self.backend.read()
        except ArmError as exc:
            # Post the text, not ``exc`` (unbound once this block ends, as in ``_connect``).
            message = f"recovery {'refused' if isinstance(exc, RecoveryRefused) else 'failed'}: {exc}"
            self.node.post(lambda: self._recovered(None, message))
            return
        self.node.post(lambda: self._recovered(states, "recovered"))

    def _recovered(self, states: tuple[ArmState, ArmState] | None, message: str) -> None:
        if self._closed:
            return
        self.supervisor.recovered(states, message, self.clock.now(), self.timeline.now())
        self._apply()

    # -- state publishing -----------------------------------------------------------------
    def _state_tick(self) -> None:
        """Publish what was read, stamped with when it was read; each read at most once. Nothing
        while reads fail or during a recovery, so a consumer never sees old data under a new stamp;
        an arm whose data froze is published with ``fresh=False``."""
        sup = self.supervisor
        if self._closed or sup.motion in (Motion.CONNECTING, Motion.DISCONNECTED):
            return
        mono = self.timeline.now()
        # Reuse the control tick's read when it is recent: a read can wait on the robot/sim lock,
        # and at equal rates the two timers fire back to back.
        if sup.motion != Motion.RECOVERING and mono - sup.last_read >= 0.5 / self.params.state_rate:
            try:
                self._read()
            except ArmError:
                return  # the control tick faults on it
        states, read_at, stamp = sup.last_states, sup.last_read, sup.read_stamp
        if states is None or read_at <= self._published_read:
            return
        self._published_read = read_at
        left, right = sup.marked(states, read_at)
        self.state_pub.publish(RigState(left, right, sup.ownership.mode, stamp))
        names = tuple(self.backend.joint_names[0]) + tuple(self.backend.joint_names[1])
        self.joint_pub.publish(JointStates(
            names, np.concatenate([left.joint_positions, right.joint_positions]),
            np.concatenate([left.joint_velocities, right.joint_velocities]), stamp))
        self.state_rate.mark(mono)

    # -- diagnostics and shutdown ---------------------------------------------------------
    def timing(self) -> dict[str, float]:
        """The control timer's figures (period error p99 in ms, overruns, on the node's timeline)
        and how late targets arrived (ms after their stamp: p50, p99, max; negative = early)."""
        rep = self.control_timer.stats.report()
        out = {"control_ticks": rep.count, "control_period_err_p99_ms": round(rep.error_p99 * 1e3, 2),
               "control_overruns": rep.overruns}
        if self.target_age:
            age = np.asarray(self.target_age) * 1e3
            out.update(target_age_p50_ms=round(float(np.percentile(age, 50)), 1),
                       target_age_p99_ms=round(float(np.percentile(age, 99)), 1),
                       target_age_max_ms=round(float(age.max()), 1))
        return out

    def diagnostics(self) -> dict[str, Any]:
        now = self.timeline.now()
        return {
            "backend": self.params.backend,
            "command_rate_hz": round(self.command_rate.rate(now), 1),
            "state_rate_hz": round(self.state_rate.rate(now), 1),
            "commands_sent": self.commands_sent,
            **self.timing(),
            **self.supervisor.diagnostics(now),
        }

    def shutdown(self) -> None:
        self._closed = True
        self.control_timer.cancel()
        self.state_timer.cancel()
        # One line a bench (bench/arm_timing.py) and a reader of the launch output can use.
        self.log.info("arm node timing: %s", " ".join(f"{k}={v}" for k, v in self.timing().items()))
        # Give a connect or recovery in flight a moment, then stop and release the arms anyway:
        # close() ends the backend's I/O, which also unblocks a stuck worker.
        locked = self._backend_lock.acquire(timeout=2.0)
        try:
            try:
                self.backend.stop()
            except ArmError as exc:
                self.log.warning("stop at shutdown: %s", exc)
            self.backend.close()
        finally:
            if locked:
                self._backend_lock.release()
            self.supervisor.disconnected("shut down")
            self.log.info("arm node shut down")
