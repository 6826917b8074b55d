"""The arm node: ownership, interpolation, safety clamps, watchdog and faults around a RigBackend.

Same component for the Flexiv arms and the simulated rig (the backend is a parameter). Per
control tick (the backend's command rate): read both arms, react to faults, run the watchdog,
sample the owner's timed targets, clamp to the workspace box, the velocity/acceleration limits,
the gripper rate and the inter-arm distance, and stream one target per arm. A separate timer
publishes ``RigState`` on ``/arms/state`` and ``/joint_states`` at ``state_rate`` (>= 100 Hz),
each read once, stamped with when it was read; an arm whose data stops updating for
``state_timeout`` is published with ``fresh=False``, and is a communication fault while commands
stream (when stopped, a backend may legitimately block its state, e.g. in a robot's Stop). Who may
change the mode is the ownership policy of ``a2w.arms.ownership``; gripper jams are watched by
``a2w.arms.gripper_watch``.

Everything slow (connect, recovery) runs on a worker thread; callbacks never block. Internally
poses are in the world (table) frame; targets and states are in each arm's base frame
(a2w.msgs.arms), converted with the configured base poses.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from a2w.arms import kinematics
from a2w.arms.backend import ArmError, ArmFaultError, Fault, FaultKind, RecoveryRefused, RigBackend
from a2w.arms.drivers import resolve
from a2w.arms.gripper_watch import GripperWatch
from a2w.arms.ownership import STREAMING_MODES, Ownership, parse_mode
from a2w.arms.safety import (
    CartesianCommand,
    Clamp,
    MotionLimits,
    TargetInterpolator,
    Waypoint,
    Watchdog,
    WatchdogState,
    WorkspaceBox,
    brake_step,
    chain_capsules,
    inter_arm_stop,
    limit_step,
    min_distance,
    target_problem,
)
from a2w.clock import RateMeter
from a2w.geometry import matrix_to_pose, xyz_rpy_to_matrix
from a2w.geometry_fast import qconj, qmul
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.arms import (
    ARM_NAMES, ArmsStatus, ArmState, ArmTarget, ControlMode, JointStates, RigState, RigTarget,
)
from a2w.msgs.common import Pose
from a2w.msgs.services import Outcome, RecoverRequest, SetControlModeRequest, SetControlModeResponse

TARGET_TOPIC = "/arms/target"
STATE_TOPIC = "/arms/state"
JOINT_STATES_TOPIC = "/joint_states"
STATUS_TOPIC = "/arms/status"
SET_MODE_SERVICE = "/arms/set_mode"
RECOVER_SERVICE = "/arms/recover"

class Motion(str, enum.Enum):
    CONNECTING = "connecting"
    STOPPED = "stopped"  # nothing streamed (mode idle, or after a watchdog stop)
    HOLDING = "holding"  # braking to rest along the current path, then streaming that pose
    STREAMING = "streaming"  # streaming the owner's targets
    FAULTED = "faulted"
    RECOVERING = "recovering"
    DISCONNECTED = "disconnected"


@dataclass
class ArmNodeParams(Params):
    backend: str = param("sim", "rig backend: 'flexiv', 'sim' or 'package.module:factory'")
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
    capsule_radii: list[float] = param(
        [0.08, 0.07, 0.06, 0.05, 0.06],
        "capsule radii (m): base-shoulder, upper arm, forearm, wrist-flange, flange-TCP (gripper)")
    min_arm_distance: float = param(0.05, "stop a step that brings the arms' capsules closer than this (m)",
                                    low=0.0)
    # Flexiv backend (a2w.arms.flexiv); the open questions of flexiv_facts.md §9 are explicit here.
    flexiv_left_serial: str = param("", "left arm serial, e.g. Rizon4s-062000")
    flexiv_right_serial: str = param("", "right arm serial")
    flexiv_left_nics: list[str] = param([], "IPv4 of the local NIC wired to the left arm ([] = all)")
    flexiv_right_nics: list[str] = param([], "IPv4 of the local NIC wired to the right arm ([] = all)")
    flexiv_software_version: str = param("", "robot FSP version read in Elements, e.g. 3.11.2 (open question 1)")
    flexiv_accept_unverified_pairing: bool = param(False, "run an RDK whose FSP pairing is not verified")
    flexiv_rate: float = param(100.0, "NRT Cartesian streaming rate (Hz)", low=30.0, high=100.0)
    flexiv_tool_name: str = param("", "Elements Tool entry of the 2F-85 to switch to ('' = keep)")
    flexiv_gripper_interface: str = param(
        "unset", "how the 2F-85 is wired (open question 2): rdk_device | modbus_rtu | none",
        choices=("unset", "rdk_device", "modbus_rtu", "none"))
    flexiv_gripper_device: str = param("", "Elements Device name of the gripper (rdk_device)")
    flexiv_gripper_velocity: float = param(0.1, "gripper finger speed (m/s)", low=1e-3, high=1.0)
    flexiv_gripper_force: float = param(20.0, "gripper force limit (N)", low=0.1, high=300.0)
    flexiv_cartesian_stiffness: list[float] = param([], "K_x (6) re-applied on mode entry ([] = nominal)")
    flexiv_max_contact_wrench: list[float] = param([], "max contact wrench (6) ([] = robot default)")
    flexiv_worker_python: str = param("", "interpreter of the RDK worker processes ('' = this one)")
    flexiv_rdk_module: str = param("flexivrdk", "module providing the RDK API")
    flexiv_enable_timeout: float = param(30.0, "wait for operational after Enable (s)", low=1.0)
    flexiv_connect_timeout: float = param(60.0, "whole bring-up timeout per arm (s)", low=5.0)
    # Sim backend (a2w.sim)
    sim_world: str = param("sim", "name of the SimWorld the sim node registered")
    sim_command_rate: float = param(100.0, "control rate with the sim backend (Hz)", low=10.0, high=1000.0)


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
        self.limits = MotionLimits(p.max_linear_vel, p.max_angular_vel, p.max_linear_acc,
                                   p.max_angular_acc, p.gripper_rate)
        self.workspace = (WorkspaceBox(p.left_workspace_lo, p.left_workspace_hi),
                          WorkspaceBox(p.right_workspace_lo, p.right_workspace_hi))
        self.base_T = (_base_matrix(p.left_base_pose, "left_base_pose"),
                       _base_matrix(p.right_base_pose, "right_base_pose"))
        if len(p.capsule_radii) != 5 or any(r < 0 for r in p.capsule_radii):
            raise ValueError(f"capsule_radii: need 5 non-negative values, got {p.capsule_radii}")
        self.watchdog = Watchdog(p.hold_after, p.stop_after)
        self.ownership = Ownership(ControlMode.IDLE, logger=self.log)
        self.backend: RigBackend = resolve(p.backend)(p, node)
        self.dt = 1.0 / float(self.backend.command_rate)
        base_pose = getattr(self.backend, "base_pose", None)
        if callable(base_pose):
            # A backend that knows its bases (the sim scene) is the truth; the parameters are for
            # backends that do not (the real arms: calibration).
            self.base_T = (np.asarray(base_pose(0), float), np.asarray(base_pose(1), float))
        self.base_q = tuple(matrix_to_pose(T).quaternion for T in self.base_T)
        self.motion = Motion.CONNECTING
        self.interp = (TargetInterpolator(), TargetInterpolator())
        self.cmd: list[CartesianCommand | None] = [None, None]
        self.last_states: tuple[ArmState, ArmState] | None = None
        self._last_read = -math.inf  # timeline time of the last read
        self._read_stamp = -math.inf  # its clock stamp
        self.faults: list[Fault] = []
        self.fault_history: deque[str] = deque(maxlen=20)
        self.mode_before_fault = ControlMode.HOLD
        self.clamps: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.last_reject = ""
        self.message = "connecting"
        self.commands_sent = 0
        self.targets_accepted = 0
        self.command_rate = RateMeter()
        self.state_rate = RateMeter()
        self.arm_distance = math.inf
        self.recovery_ok: bool | None = None
        self._recover_mode = ControlMode.HOLD
        self._closed = False
        self._backend_lock = threading.Lock()  # connect/recover worker vs. callbacks
        # Link freshness per arm: the last state stamp read and when (node clock) it last changed.
        self._arm_stamp = [math.nan, math.nan]
        self._arm_seen = [-math.inf, -math.inf]
        self._published_read = -math.inf  # the read behind the last /arms/state message
        self.gripper_watch = tuple(GripperWatch(p.gripper_tolerance, p.gripper_jam_after) for _ in range(2))
        self.warnings: dict[int, str] = {}  # arm -> current warning (gripper jam)

        self.state_pub = node.create_publisher(STATE_TOPIC, RigState, QoS.sensor())
        self.joint_pub = node.create_publisher(JOINT_STATES_TOPIC, JointStates, QoS.sensor())
        self.status_pub = node.create_publisher(STATUS_TOPIC, ArmsStatus, QoS.latched_state())
        node.create_subscription(TARGET_TOPIC, RigTarget, self._on_target, QoS.reliable(10))
        node.create_service(SET_MODE_SERVICE, SetControlModeRequest, self._on_set_mode)
        node.create_service(RECOVER_SERVICE, RecoverRequest, self._on_recover)
        self.control_timer = node.create_timer(self.dt, self._control_tick)
        self.state_timer = node.create_timer(1.0 / p.state_rate, self._state_tick)
        node.start_worker("connect", self._connect)

    # -- frames ---------------------------------------------------------------------------
    def _to_world(self, arm: int, pos: np.ndarray, quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = self.base_T[arm]
        return T[:3, :3] @ pos + T[:3, 3], qmul(self.base_q[arm], np.asarray(quat, dtype=float))

    def _to_base(self, arm: int, pos: np.ndarray, quat: np.ndarray) -> Pose:
        T = self.base_T[arm]
        p = T[:3, :3].T @ (pos - T[:3, 3])
        q = qmul(qconj(self.base_q[arm]), quat)
        return Pose(p, q / np.linalg.norm(q))

    # -- connection -----------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            with self._backend_lock:
                self.backend.connect()
                states = self.backend.read()
        except ArmError as exc:
            self.log.error("arm backend did not come up: %s", exc)
            self.node.post(lambda: self._set_motion(Motion.DISCONNECTED, f"connect failed: {exc}"))
            return
        self.node.post(lambda: self._connected(states))

    def _connected(self, states: tuple[ArmState, ArmState]) -> None:
        if self._closed:
            return
        self.last_states = states
        self._fresh_from(states)
        self._seed_from(states)
        self._set_motion(Motion.STOPPED, "connected")
        if self.params.initial_mode == "hold":
            self._switch(ControlMode.HOLD, "initial mode after connect")

    def _seed_from(self, states: tuple[ArmState, ArmState]) -> None:
        for i, st in enumerate(states):
            p, q = self._to_world(i, st.tcp_pose.position, st.tcp_pose.quaternion)
            self.cmd[i] = CartesianCommand(p, q, np.zeros(3), np.zeros(3), st.gripper_open)

    def _fresh_from(self, states: tuple[ArmState, ArmState]) -> None:
        """Freshness restarts from ``states`` (after connecting or recovering)."""
        mono = self.timeline.now()
        self._arm_stamp = [st.stamp for st in states]
        self._arm_seen = [mono, mono]
        self._last_read, self._read_stamp = mono, self.clock.now()

    def _read(self) -> tuple[ArmState, ArmState]:
        """Read both arms, noting when each arm's data last changed. ``ArmError`` if the read fails."""
        states = self.backend.read()
        mono = self.timeline.now()
        for i, st in enumerate(states):
            if st.stamp != self._arm_stamp[i]:
                self._arm_stamp[i], self._arm_seen[i] = st.stamp, mono
        self.last_states, self._last_read, self._read_stamp = states, mono, self.clock.now()
        return states

    def _stale(self, i: int, mono: float) -> bool:
        """No new data from arm ``i`` for ``state_timeout`` at timeline time ``mono``."""
        return mono - self._arm_seen[i] > self.params.state_timeout

    def _set_motion(self, motion: Motion, message: str) -> None:
        self.motion = motion
        self.message = message
        self._publish_status()

    def _publish_status(self) -> None:
        self.status_pub.publish(ArmsStatus(
            self.ownership.mode, self.motion.value, self.message,
            tuple(f"{ARM_NAMES[f.arm] if f.arm in (0, 1) else 'rig'}: {f.kind.value}: {f.text}"
                  for f in self.faults),
            self.clock.now(), self.recovery_ok, self.ownership.owner or "",
            tuple(self.warnings[i] for i in sorted(self.warnings))))

    # -- ownership ------------------------------------------------------------------------
    def _switch(self, mode: ControlMode, reason: str) -> list[str]:
        """Mode change through HOLD: the arms brake to rest (``_enter_hold``), old targets are dropped."""
        made = self.ownership.request(mode, reason, self.clock.now())
        if not made:
            return []
        if self.cmd[0] is not None:
            for i in range(2):
                self.interp[i].reset(Waypoint(self.clock.now(), self.cmd[i].position,
                                              self.cmd[i].quaternion, self.cmd[i].gripper))
        new = self.ownership.mode
        if new == ControlMode.IDLE:
            self._stop_backend(f"mode idle ({reason})")
        else:
            if self.motion == Motion.STOPPED and self.last_states is not None:
                # Restart from where the arms are, not from a command they never reached.
                self._seed_from(self.last_states)
            self.watchdog.feed(self.timeline.now())
            self._set_motion(Motion.HOLDING, f"mode {new.value} ({reason})")
        return [str(t) for t in made]

    def _on_set_mode(self, req: SetControlModeRequest) -> SetControlModeResponse:
        """The ownership policy of ``a2w.arms.ownership``, then the mode change."""
        mode = self.ownership.mode
        try:
            new = parse_mode(req.mode)
        except ValueError as exc:
            return SetControlModeResponse(False, mode, str(exc))
        who = str(req.requester).strip()
        override = bool(req.override)
        reason = f"requested by {who or 'unknown'}" + (" (operator override)" if override else "")
        if self.motion in (Motion.CONNECTING, Motion.DISCONNECTED):
            return SetControlModeResponse(False, mode, f"arms are {self.motion.value}")
        refusal = self.ownership.refusal(new, who, override)
        if refusal:
            self.log.warning("set_mode %s by %s refused: %s", new.value, who or "unknown", refusal)
            return SetControlModeResponse(False, mode, refusal)
        faulted = self.motion in (Motion.FAULTED, Motion.RECOVERING)
        if faulted and new in STREAMING_MODES:
            return SetControlModeResponse(False, mode, f"arms are {self.motion.value}: call recover first")
        owner = self.ownership.claim(new, who, override)
        if faulted:
            # Already stopped; a stop asked for now is what recovery re-enters, not the old mode.
            self.mode_before_fault = self._recover_mode = new
            return SetControlModeResponse(True, mode, "; ".join(filter(None, [
                f"arms are {self.motion.value} and stopped; {new.value} after recover", owner])))
        made = self._switch(new, reason)
        return SetControlModeResponse(True, self.ownership.mode, "; ".join(
            filter(None, [*made, owner])) or f"already {new.value}")

    # -- targets --------------------------------------------------------------------------
    def _reject(self, reason: str, hold: bool) -> None:
        key = reason.split(":", 1)[0]
        self.rejects[key] += 1
        self.last_reject = reason
        if self.rejects[key] == 1 or self.rejects[key] % 100 == 0:
            self.log.warning("target rejected (%s, %d so far): %s", key, self.rejects[key], reason)
        if hold and self.motion == Motion.STREAMING:
            self._enter_hold(f"target rejected: {reason}")

    def _enter_hold(self, why: str) -> None:
        """Hold: brake along the current path and stay where the arms come to rest (``_step``).
        Holding the last command pose instead overshoots it at speed and then drives back."""
        self._set_motion(Motion.HOLDING, why)

    def _on_target(self, msg: RigTarget) -> None:
        now = self.clock.now()
        if not isinstance(msg, RigTarget):
            self._reject(f"malformed: not a RigTarget ({type(msg).__name__})", hold=True)
            return
        try:
            arms = [msg.arm(i) for i in range(2)]
            problems = [target_problem(a.tcp_pose.position, a.tcp_pose.quaternion, a.gripper_open,
                                       msg.stamp, now, self.params.stale_after, self.params.max_lead)
                        for a in arms]
            source = ControlMode(msg.source)
        except (AttributeError, TypeError, ValueError) as exc:
            self._reject(f"malformed: {exc}", hold=True)
            return
        bad = next((f"{ARM_NAMES[i]} {pr}" for i, pr in enumerate(problems) if pr), "")
        if bad:
            # "left stale: ..." -> count by the problem, not the arm
            self._reject(bad.split(" ", 1)[1] if " " in bad else bad, hold=True)
            return
        if self.motion in (Motion.FAULTED, Motion.RECOVERING):
            self._reject(f"faulted: motion refused until recover ({self.message})", hold=False)
            return
        if not self.ownership.accepts(source):
            self._reject(f"not owner: source {source.value}, mode {self.ownership.mode.value}", hold=False)
            return
        if not self.ownership.owned_by(msg.requester):
            self._reject(f"not owner: targets from {msg.requester.strip()!r}, the arms are owned by "
                         f"{self.ownership.owner!r}", hold=False)
            return
        resume = self.motion != Motion.STREAMING
        for i, a in enumerate(arms):
            p, q = self._to_world(i, np.asarray(a.tcp_pose.position), np.asarray(a.tcp_pose.quaternion))
            if resume and self.cmd[i] is not None:
                c = self.cmd[i]
                self.interp[i].reset(Waypoint(now, c.position, c.quaternion, c.gripper))
            self.interp[i].push(Waypoint(float(msg.stamp), p, q, float(a.gripper_open)), now)
        self.watchdog.feed(self.timeline.now())
        self.targets_accepted += 1
        if resume:
            self._set_motion(Motion.STREAMING, f"streaming {source.value} targets")

    # -- control loop ---------------------------------------------------------------------
    def _control_tick(self) -> None:
        if self.motion in (Motion.CONNECTING, Motion.RECOVERING, Motion.DISCONNECTED) or self._closed:
            return
        now = self.clock.now()
        try:
            states = self._read()
        except ArmError as exc:
            self._fault([Fault(-1, FaultKind.COMMUNICATION, f"reading the arms' state failed: {exc}")])
            return
        faults = self._backend_faults()
        if self.motion in (Motion.STREAMING, Motion.HOLDING):  # never command on lost data
            faults += [Fault(i, FaultKind.COMMUNICATION,
                             f"no new state from the {ARM_NAMES[i]} arm for more than state_timeout "
                             f"{self.params.state_timeout:g} s (link lost or frozen)")
                       for i in range(2) if self._stale(i, self._last_read)]
        if faults or self.motion == Motion.FAULTED:
            # Faulted stays faulted even if nothing is reported now (e.g. cleared at the robot):
            # only an explicit recover resumes.
            self._fault(faults)
            return
        mode = self.ownership.mode
        if mode in STREAMING_MODES and self.motion in (Motion.STREAMING, Motion.HOLDING):
            wd = self.watchdog.check(self._last_read)
            if wd == WatchdogState.STOP:
                self._switch(ControlMode.IDLE, f"watchdog: no target for {self.params.stop_after:g} s")
                return
            if wd == WatchdogState.HOLD and self.motion == Motion.STREAMING:
                self._enter_hold(f"watchdog: no target for {self.params.hold_after:g} s")
        if self.motion not in (Motion.STREAMING, Motion.HOLDING):
            return
        self._step(states, now)
        self._watch_grippers(states, self._last_read)

    def _watch_grippers(self, states: tuple[ArmState, ArmState], mono: float) -> None:
        """Commanded vs measured gripper opening (a2w.arms.gripper_watch): a jam is a warning, not
        a fault: the arms may keep moving, but whoever commands them must know."""
        if self.motion not in (Motion.STREAMING, Motion.HOLDING):
            return  # the step faulted: nothing commanded
        for i in range(2):
            jam = self.gripper_watch[i].update(mono, float(np.clip(self.cmd[i].gripper, 0.0, 1.0)),
                                               states[i].gripper_open)
            if bool(jam) == (i in self.warnings):
                continue
            if jam:
                self.warnings[i] = f"{ARM_NAMES[i]} gripper: {jam}"
                self.log.warning(self.warnings[i])
            else:
                self.log.info("%s gripper tracks its command again", ARM_NAMES[i])
                del self.warnings[i]
            self._publish_status()

    def _desired(self, i: int, now: float) -> tuple[np.ndarray, np.ndarray, float]:
        w = self.interp[i].sample(now)
        return w.position, w.quaternion, w.gripper

    def _key_points(self, i: int, st: ArmState) -> list[np.ndarray] | None:
        if len(st.joint_positions) != 7:
            return None
        T = self.base_T[i]
        return [T[:3, :3] @ k + T[:3, 3] for k in kinematics.key_points(st.joint_positions)]

    def _capsules(self, pts: list[np.ndarray] | None, tcp_world: np.ndarray, shift: np.ndarray) -> list:
        r = self.params.capsule_radii
        if pts is not None:
            # The wrist and flange follow the TCP step; the upper links barely move in one step.
            return chain_capsules([*pts[:-2], pts[-2] + shift, pts[-1] + shift, tcp_world], r)
        return chain_capsules([tcp_world, tcp_world], r[-1:])

    def _step(self, states: tuple[ArmState, ArmState], now: float) -> None:
        new: list[CartesianCommand] = []
        flags: set[Clamp] = set()
        for i in range(2):
            prev = self.cmd[i]
            box = self.workspace[i]
            if self.motion == Motion.HOLDING:
                c, f = brake_step(prev, self.dt, self.limits, box)
            else:
                p, q, g = self._desired(i, now)
                p, clamped = box.clamp(np.asarray(p, dtype=float))
                if clamped:
                    flags.add(Clamp.WORKSPACE)
                # The box is passed on too: a clamped target alone does not keep the path inside.
                c, f = limit_step(prev, p, q, g, self.dt, self.limits, box)
            flags |= f
            new.append(c)
        pts = [self._key_points(i, states[i]) for i in range(2)]
        cur = min_distance(self._capsules(pts[0], self.cmd[0].position, np.zeros(3)),
                           self._capsules(pts[1], self.cmd[1].position, np.zeros(3)))
        pred = min_distance(
            self._capsules(pts[0], new[0].position, new[0].position - self.cmd[0].position),
            self._capsules(pts[1], new[1].position, new[1].position - self.cmd[1].position))
        self.arm_distance = pred
        if inter_arm_stop(cur, pred, self.params.min_arm_distance):
            flags.add(Clamp.INTER_ARM)
            new = [c.at_rest() for c in self.cmd]  # stop before contact; moving apart stays allowed
            if self.clamps[Clamp.INTER_ARM.value] == 0 or self.motion == Motion.STREAMING:
                self.log.warning("inter-arm distance %.3f m would fall below %.3f m: step refused",
                                 pred, self.params.min_arm_distance)
        for fl in flags:
            self.clamps[fl.value] += 1
        targets = tuple(ArmTarget(self._to_base(i, c.position, c.quaternion), float(np.clip(c.gripper, 0, 1)))
                        for i, c in enumerate(new))
        try:
            self.backend.command(targets)  # type: ignore[arg-type]
        except ArmFaultError as exc:
            self._enter_fault([exc.fault])
            return
        except ArmError as exc:
            self._enter_fault([Fault(-1, FaultKind.COMMUNICATION, str(exc))])
            return
        self.cmd = new
        self.commands_sent += 1
        self.command_rate.mark(self.timeline.now())

    def _stop_backend(self, why: str) -> None:
        try:
            self.backend.stop()
        except ArmError as exc:
            self.log.error("backend stop failed: %s", exc)
        for i in range(2):
            if self.cmd[i] is not None:
                self.cmd[i] = self.cmd[i].at_rest()
        if self.motion not in (Motion.FAULTED, Motion.RECOVERING):
            self._set_motion(Motion.STOPPED, why)

    # -- faults ---------------------------------------------------------------------------
    def _backend_faults(self) -> list[Fault]:
        return [f for f in (self.backend.fault(0), self.backend.fault(1)) if f is not None]

    def _fault(self, faults: list[Fault]) -> None:
        """Enter the fault state, or, already in it, bring the fault list up to date."""
        if self.motion != Motion.FAULTED:
            self._enter_fault(faults)
        else:
            self._refresh_faults(faults)

    def _refresh_faults(self, current: list[Fault]) -> None:
        """The fault list while faulted: an operator-side fault (e-stop, pendant) stays only while
        it is still reported, so its release is seen; recoverable faults stay until a recover.
        One entry per arm and kind."""
        merged: dict[tuple[int, FaultKind], Fault] = {}
        for f in [*(f for f in self.faults if f.recoverable), *current]:
            merged.setdefault((f.arm, f.kind), f)
        faults = list(merged.values())
        if faults != self.faults:
            self.log.info("arm faults now: %s",
                          "; ".join(f"{f.kind.value}: {f.text}" for f in faults) or "none")
            self.faults = faults
            self._publish_status()

    def _enter_fault(self, faults: list[Fault]) -> None:
        self.faults = faults
        if self.ownership.mode != ControlMode.IDLE:
            self.mode_before_fault = self.ownership.mode
        for f in faults:
            entry = f"{self.clock.now():.3f} {ARM_NAMES[f.arm] if f.arm in (0, 1) else 'rig'} {f.kind.value}: {f.text}"
            self.fault_history.append(entry)
            self.log.error("arm fault: %s", entry)
        self._set_motion(Motion.FAULTED, "fault: " + "; ".join(f.text for f in faults))
        self._stop_backend("fault")
        if self.ownership.mode != ControlMode.IDLE:
            self.ownership.request(ControlMode.IDLE, "fault: " + faults[0].text, self.clock.now())
        self._publish_status()

    def _on_recover(self, req: RecoverRequest) -> Outcome:
        if self.motion == Motion.RECOVERING:
            return Outcome(False, "recovery already running")
        if self.motion != Motion.FAULTED:
            return Outcome(False, f"nothing to recover (arms are {self.motion.value})")
        self._refresh_faults(self._backend_faults())
        operator = [f for f in self.faults if not f.recoverable]
        if operator:
            msg = "recovery refused, needs the operator: " + "; ".join(
                f"{ARM_NAMES[f.arm] if f.arm in (0, 1) else 'rig'} {f.kind.value}: {f.text}" for f in operator)
            self.log.warning(msg)
            return Outcome(False, msg)
        self._recover_mode = self.mode_before_fault
        self._set_motion(Motion.RECOVERING, "recovery started")
        self.node.start_worker("recover", self._recover)
        return Outcome(True, f"recovery started; re-enters {self._recover_mode.value} when done (watch {STATUS_TOPIC})")

    def _recover(self) -> None:
        try:
            with self._backend_lock:
                self.backend.clear_fault()
                states = self.backend.read()
        except RecoveryRefused as exc:
            self.node.post(lambda: self._recovered(None, f"recovery refused: {exc}"))
            return
        except ArmError as exc:
            self.node.post(lambda: self._recovered(None, f"recovery failed: {exc}"))
            return
        self.node.post(lambda: self._recovered(states, "recovered"))

    def _recovered(self, states: tuple[ArmState, ArmState] | None, message: str) -> None:
        if self._closed:
            return
        if states is None:
            self.recovery_ok = False
            self.log.error(message)
            self._set_motion(Motion.FAULTED, message)
            return
        self.recovery_ok = True
        self.faults = []
        self.last_states = states
        self._fresh_from(states)
        self._seed_from(states)
        self._set_motion(Motion.STOPPED, message)
        self.log.info("arms recovered; re-entering %s", self._recover_mode.value)
        self._switch(ControlMode.HOLD, "recovered")
        if self._recover_mode != ControlMode.HOLD:
            self._switch(self._recover_mode, "re-enter mode after recovery")

    # -- state publishing -----------------------------------------------------------------
    def _state_tick(self) -> None:
        """Publish what was read, stamped with when it was read; each read at most once. Nothing
        while reads fail or during a recovery, so a consumer never sees old data under a new stamp;
        an arm whose data froze is published with ``fresh=False``."""
        if self.motion in (Motion.CONNECTING, Motion.DISCONNECTED) or self._closed:
            return
        mono = self.timeline.now()
        # Reuse the control tick's read when it is recent: a read can wait on the robot/sim lock,
        # and at equal rates the two timers fire back to back.
        if self.motion != Motion.RECOVERING and mono - self._last_read >= 0.5 / self.params.state_rate:
            try:
                self._read()
            except ArmError:
                return  # the control tick faults on it
        states, read_at, stamp = self.last_states, self._last_read, self._read_stamp
        if states is None or read_at <= self._published_read:
            return
        self._published_read = read_at
        states = tuple(dataclasses.replace(st, fresh=False) if self._stale(i, read_at) else st
                       for i, st in enumerate(states))
        self.state_pub.publish(RigState(states[0], states[1], self.ownership.mode, stamp))
        names = tuple(self.backend.joint_names[0]) + tuple(self.backend.joint_names[1])
        self.joint_pub.publish(JointStates(
            names, np.concatenate([states[0].joint_positions, states[1].joint_positions]),
            np.concatenate([states[0].joint_velocities, states[1].joint_velocities]), stamp))
        self.state_rate.mark(mono)

    # -- diagnostics and shutdown ---------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        now = self.timeline.now()
        return {
            "backend": self.params.backend,
            "mode": self.ownership.mode.value,
            "owner": self.ownership.owner or "",
            "motion": self.motion.value,
            "message": self.message,
            "command_rate_hz": round(self.command_rate.rate(now), 1),
            "state_rate_hz": round(self.state_rate.rate(now), 1),
            "commands_sent": self.commands_sent,
            "targets_accepted": self.targets_accepted,
            "clamps": dict(self.clamps),
            "rejected": dict(self.rejects),
            "last_reject": self.last_reject,
            "arm_distance_m": round(self.arm_distance, 4) if math.isfinite(self.arm_distance) else "inf",
            "faults": [f"{f.kind.value}: {f.text}" for f in self.faults],
            "fault_history": list(self.fault_history),
            "warnings": [self.warnings[i] for i in sorted(self.warnings)],
            "fresh": [not self._stale(i, now) for i in range(2)],
            "transitions": [str(t) for t in list(self.ownership.history)[-5:]],
        }

    def shutdown(self) -> None:
        self._closed = True
        self.control_timer.cancel()
        self.state_timer.cancel()
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
            self.motion = Motion.DISCONNECTED
            self.log.info("arm node shut down")
