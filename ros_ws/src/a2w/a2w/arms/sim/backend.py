"""SimRigBackend: the two simulated arms behind the ``RigBackend`` interface, and the arm node's
factory of it (``backend_from_params``).

Cartesian TCP targets are tracked by damped-least-squares differential IK on a *reference*
configuration integrated at the control rate (rate-limited by Flexiv's joint velocity limits and a
Cartesian speed cap, clamped to the soft limits); stiff position actuators with gravity
compensation follow that reference (rig_facts.md §5.2 recipe). This mimics the RDK NRT modes,
where the robot's own motion generator smooths discrete targets.

Faults surface as on the Flexiv backend: ``ArmState.fault`` carries the text, ``fault(arm)`` the
``FaultKind``, ``command()`` raises ``ArmFaultError`` while any arm is faulted, and
``clear_fault()`` re-seeds the reference from the measured state. Detected here:

* JOINT_LIMIT: the reference would have to cross a soft limit to follow the target;
* EXCESSIVE_FORCE: the external force on the gripper (sum of its contacts) exceeds ``force_limit``;
* SELF_COLLISION: any contact between the two arms (grippers included);
* ESTOP and OPERATOR (operator-side conditions: e-stop, pendant): ``press_estop()`` or
  ``inject_fault(arm, FaultKind.OPERATOR, ...)`` engage one; it is reported, and ``clear_fault()``
  refuses, until ``release_estop()`` / ``release_operator_fault(arm)``. As on the robot, the fault
  then stays latched (as a recoverable one) until ``clear_fault()``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from a2w.arms.backend import (
    RECOVERABLE,
    ArmConnectionError,
    ArmFaultError,
    Fault,
    FaultKind,
    RecoveryRefused,
    RigBackend,
)
from a2w.arms.sim.params import SimRigParams
from a2w.geometry import matrix_to_pose, pose_to_matrix
from a2w.geometry_fast import matrix_to_rotvec
from a2w.msgs.arms import ArmState, ArmTarget
from a2w.sim.scene import ARMS, GRIPPER_STROKE, N_JOINTS, SOFT_LIMITS, VELOCITY_LIMITS
from a2w.sim.world import SimWorld, get_world

log = logging.getLogger(__name__)

IK_DAMPING = 0.03
NULLSPACE_GAIN = 2.0  # 1/s, pulls the redundant DoF toward the ready pose
TRACK_GAIN = 30.0  # 1/s, reference convergence toward the target
FINGER_FORCE_PER_N = 1.0  # finger actuator force (N) per newton of requested grip force


@dataclass
class _Arm:
    index: int
    name: str
    q_ref: np.ndarray = field(default_factory=lambda: np.zeros(N_JOINTS))
    target: np.ndarray | None = None  # 4x4 TCP target in the table frame, None = hold q_ref
    grip_target: float = GRIPPER_STROKE  # opening width (m)
    grip_cmd: float = GRIPPER_STROKE  # rate-limited width sent to the fingers
    fault: Fault | None = None
    engaged: Fault | None = None  # operator-side condition (e-stop, pendant) until released
    wrench: np.ndarray = field(default_factory=lambda: np.zeros(6))  # base frame
    q_rest: np.ndarray = field(default_factory=lambda: np.zeros(N_JOINTS))


class SimRigBackend(RigBackend):
    """Both simulated arms of ``world``. Construct, then ``connect()``; time passes only when the
    world is stepped (by the sim node, a ``SimRunner`` or a test calling ``world.step_for``)."""

    joint_names = (tuple(f"left_joint{i + 1}" for i in range(N_JOINTS)),
                   tuple(f"right_joint{i + 1}" for i in range(N_JOINTS)))

    def __init__(self, world: SimWorld, params: SimRigParams | None = None) -> None:
        self.world = world
        self.params = params or SimRigParams()
        self._arms = [_Arm(i, name) for i, name in enumerate(ARMS)]
        self._connected = False
        self._tick = 0
        self._kin = mujoco.MjData(world.model)  # scratch data for the reference kinematics
        self._apply_grip_force()

    # -- interface ------------------------------------------------------------------------
    @property
    def command_rate(self) -> float:
        return self.params.command_rate

    def connect(self) -> None:
        if self._connected:
            return
        with self.world.lock:
            self._reseed()
            for arm in self._arms:
                arm.q_rest = self.world.ready_q(arm.name)
                if arm.fault is not None and arm.fault.recoverable:
                    arm.fault = None
            self.world.pre_step.append(self._control)
            self.world.post_step.append(self._monitor)
            self.world.on_reset.append(self._on_reset)
            self._connected = True
        log.info("sim rig connected (command rate %.0f Hz)", self.params.command_rate)

    def read(self) -> tuple[ArmState, ArmState]:
        self._require_connected()
        with self.world.lock:
            return self._state(self._arms[0]), self._state(self._arms[1])

    def command(self, targets: tuple[ArmTarget, ArmTarget]) -> None:
        self._require_connected()
        if len(targets) != 2 or not all(isinstance(t, ArmTarget) for t in targets):
            raise ValueError("targets: must be a pair (left, right) of ArmTarget")
        with self.world.lock:
            for arm in self._arms:
                if arm.fault is not None:
                    raise ArmFaultError(arm.fault)
            for arm, tgt in zip(self._arms, targets):
                arm.target = self.world.arms[arm.name].base_T @ pose_to_matrix(tgt.tcp_pose)
                arm.grip_target = tgt.gripper_open * GRIPPER_STROKE

    def stop(self) -> None:
        self._require_connected()
        with self.world.lock:
            for arm in self._arms:
                arm.q_ref = self._measured_q(arm)
                arm.target = None

    def fault(self, arm: int) -> Fault | None:
        if arm not in (0, 1):
            raise ValueError(f"arm: must be 0 (left) or 1 (right), got {arm!r}")
        return self._arms[arm].fault

    def clear_fault(self) -> None:
        self._require_connected()
        with self.world.lock:
            engaged = [a.engaged for a in self._arms if a.engaged is not None]
            if engaged:
                raise RecoveryRefused("; ".join(
                    f"{ARMS[f.arm]} arm: {f.text}: release it on the rig, then clear the fault"
                    for f in engaged))
            for arm in self._arms:
                if arm.fault is not None:
                    log.info("clearing fault on %s arm: %s", arm.name, arm.fault.text)
                arm.fault = None
            self._reseed()

    def close(self) -> None:
        if not self._connected:
            return
        with self.world.lock:
            for hooks, fn in ((self.world.pre_step, self._control), (self.world.post_step, self._monitor),
                              (self.world.on_reset, self._on_reset)):
                if fn in hooks:
                    hooks.remove(fn)
            self._connected = False

    def base_pose(self, arm: int) -> np.ndarray:
        """4x4 pose of arm ``arm``'s base in the table frame (the scene's: the arm node's truth)."""
        return self.world.arms[ARMS[arm]].base_T.copy()

    # -- sim-only API ---------------------------------------------------------------------
    def press_estop(self) -> None:
        """Emulate the operator's e-stop: both arms fault with ESTOP and stop."""
        with self.world.lock:
            for arm in self._arms:
                self._engage(arm, FaultKind.ESTOP, "Emergency stop pressed")

    def release_estop(self) -> None:
        with self.world.lock:
            for arm in self._arms:
                self._release(arm, FaultKind.ESTOP)

    def inject_fault(self, arm: int, kind: FaultKind, text: str) -> None:
        """Fault ``arm`` as the robot would (for fault-handling tests). An operator-side kind
        (ESTOP, OPERATOR) stays engaged until released (``release_operator_fault``)."""
        with self.world.lock:
            if kind in RECOVERABLE:
                self._raise_fault(self._arms[arm], kind, text)
            else:
                self._engage(self._arms[arm], kind, text)

    def release_operator_fault(self, arm: int) -> None:
        """The operator resolves ``arm``'s operator-side condition (whatever its kind)."""
        with self.world.lock:
            a = self._arms[arm]
            if a.engaged is not None:
                self._release(a, a.engaged.kind)

    # -- internals ------------------------------------------------------------------------
    def _require_connected(self) -> None:
        if not self._connected:
            raise ArmConnectionError("sim rig is not connected: call connect() first")

    def _apply_grip_force(self) -> None:
        m = self.world.model
        f = self.params.grip_force * FINGER_FORCE_PER_N
        with self.world.lock:
            for name in ARMS:
                for a in self.world.arms[name].finger_actuators:
                    m.actuator_forcerange[a] = (-f, f)

    def _measured_q(self, arm: _Arm) -> np.ndarray:
        return self.world.data.qpos[self.world.arms[arm.name].qpos].copy()

    def _reseed(self) -> None:
        for arm in self._arms:
            arm.q_ref = self._measured_q(arm)
            arm.target = None
            fq = self.world.data.qpos[self.world.arms[arm.name].finger_qpos]
            arm.grip_cmd = arm.grip_target = float(np.clip(fq.sum(), 0.0, GRIPPER_STROKE))

    def _on_reset(self, _world: SimWorld) -> None:
        self._reseed()

    def _fk(self, arm: _Arm, q: np.ndarray) -> np.ndarray:
        """TCP pose (4x4, table frame) at joint positions ``q`` of ``arm``."""
        idx = self.world.arms[arm.name]
        kin = self._kin
        kin.qpos[idx.qpos] = q
        mujoco.mj_kinematics(self.world.model, kin)
        t = np.eye(4)
        t[:3, :3] = kin.site_xmat[idx.tcp_site].reshape(3, 3)
        t[:3, 3] = kin.site_xpos[idx.tcp_site]
        return t

    def _jacobian(self, arm: _Arm, tcp: np.ndarray) -> np.ndarray:
        """6x7 geometric Jacobian at the state last computed in ``self._kin``."""
        idx = self.world.arms[arm.name]
        axes = self._kin.xaxis[idx.joints]
        return np.vstack([_cross_rows(axes, tcp - self._kin.xanchor[idx.joints]).T, axes.T])

    def _control(self, world: SimWorld) -> None:
        p = self.params
        self._tick += 1
        if (self._tick - 1) % p.control_decimation:
            return  # the actuators keep the last reference between control ticks
        d = world.data
        dt = world.dt * p.control_decimation
        for arm in self._arms:
            if arm.fault is None and arm.target is not None:
                self._ik_step(arm, dt)
            # Gripper: rate-limited toward its target, unless a fault injection jammed it.
            if not world.gripper_stuck[arm.name]:
                step = p.gripper_speed * dt
                arm.grip_cmd += min(step, max(-step, arm.grip_target - arm.grip_cmd))
            idx = world.arms[arm.name]
            d.ctrl[idx.actuators] = arm.q_ref
            d.ctrl[idx.finger_actuators] = arm.grip_cmd / 2.0

    def _ik_step(self, arm: _Arm, dt: float) -> None:
        p = self.params
        cur = self._fk(arm, arm.q_ref)
        tgt = arm.target
        e_pos = tgt[:3, 3] - cur[:3, 3]
        e_rot = matrix_to_rotvec(tgt[:3, :3] @ cur[:3, :3].T)
        v = TRACK_GAIN * e_pos
        w = TRACK_GAIN * e_rot
        v *= min(1.0, p.max_linear_speed / max(np.linalg.norm(v), 1e-12))
        w *= min(1.0, p.max_angular_speed / max(np.linalg.norm(w), 1e-12))
        jac = self._jacobian(arm, cur[:3, 3])
        jjt = jac @ jac.T + _DAMP6
        pinv = np.linalg.solve(jjt, jac).T  # J^T (J J^T + λ²I)^-1, the matrix being symmetric
        dq = pinv @ np.concatenate([v, w])
        dq += (_EYE7 - pinv @ jac) @ (NULLSPACE_GAIN * (arm.q_rest - arm.q_ref))
        vmax = VELOCITY_LIMITS * p.velocity_scale
        dq = np.clip(dq, -vmax, vmax)
        q_new = arm.q_ref + dq * dt
        lo, hi = SOFT_LIMITS[:, 0], SOFT_LIMITS[:, 1]
        over = np.flatnonzero((q_new < lo) | (q_new > hi))
        if over.size:
            j = int(over[0])
            self._raise_fault(arm, FaultKind.JOINT_LIMIT,
                              f"Joint A{j + 1} reached its position limit "
                              f"({math.degrees(q_new[j]):.1f} deg, limits "
                              f"[{math.degrees(lo[j]):.0f}, {math.degrees(hi[j]):.0f}] deg)")
            return
        arm.q_ref = q_new

    def _monitor(self, world: SimWorld) -> None:
        if (self._tick - 1) % self.params.control_decimation:
            return
        m, d = world.model, world.data
        force = [np.zeros(3), np.zeros(3)]
        torque = [np.zeros(3), np.zeros(3)]
        tcp = [d.site_xpos[world.arms[a].tcp_site] for a in ARMS]
        collided: tuple[int, int] | None = None
        f6 = np.zeros(6)
        n = d.ncon
        if n:
            con = d.contact
            g1s, g2s = con.geom1[:n], con.geom2[:n]
            a1s, a2s = world.geom_arm[g1s], world.geom_arm[g2s]
            frames, points = con.frame, con.pos
            for i in np.flatnonzero((a1s >= 0) | (a2s >= 0)):
                g1, g2, a1, a2 = int(g1s[i]), int(g2s[i]), int(a1s[i]), int(a2s[i])
                if a1 >= 0 and a2 >= 0 and a1 != a2:
                    collided = (g1, g2)
                    continue
                mujoco.mj_contactForce(m, d, int(i), f6)
                # Contact-frame force acting on geom2 (its normal points from geom1 to geom2).
                f_world = frames[i].reshape(3, 3).T @ f6[:3]
                for a, g, sign in ((a1, g1, -1.0), (a2, g2, 1.0)):
                    if a >= 0 and world.geom_is_gripper[g]:
                        fa = sign * f_world
                        force[a] += fa
                        torque[a] += _cross(points[i] - tcp[a], fa)
        for a, arm in enumerate(self._arms):
            r_base = world.arms[arm.name].base_T[:3, :3]
            arm.wrench = np.concatenate([r_base.T @ force[a], r_base.T @ torque[a]])
            fn = float(np.linalg.norm(force[a]))
            if fn > self.params.force_limit and arm.fault is None:
                self._raise_fault(arm, FaultKind.EXCESSIVE_FORCE,
                                  f"Excessive contact force at the TCP: {fn:.0f} N "
                                  f"(limit {self.params.force_limit:.0f} N)")
        if collided is not None:
            names = [m.geom(g).name for g in collided]
            for arm in self._arms:
                if arm.fault is None:
                    self._raise_fault(arm, FaultKind.SELF_COLLISION,
                                      f"Collision between the arms detected ({names[0]} / {names[1]})")

    def _engage(self, arm: _Arm, kind: FaultKind, text: str) -> None:
        arm.engaged = Fault(arm.index, kind, text)
        self._raise_fault(arm, kind, text)

    def _release(self, arm: _Arm, kind: FaultKind) -> None:
        if arm.engaged is None or arm.engaged.kind != kind:
            return
        if arm.fault == arm.engaged:
            # Latched like the robot's fault after an e-stop release: a recover clears it.
            arm.fault = Fault(arm.index, FaultKind.OTHER, f"{arm.engaged.text} (released): clear the fault")
        log.info("%s arm: operator released %s", arm.name, kind.value)
        arm.engaged = None

    def _raise_fault(self, arm: _Arm, kind: FaultKind, text: str) -> None:
        if arm.fault is not None and arm.fault.kind == kind:
            return
        if arm.fault is None or kind not in RECOVERABLE:
            arm.fault = Fault(arm.index, kind, text)
            log.warning("%s arm fault (%s): %s", arm.name, kind.value, text)
        # A faulted arm stops where it is, like the robot dropping to IDLE.
        arm.q_ref = self._measured_q(arm)
        arm.target = None

    def _state(self, arm: _Arm) -> ArmState:
        w = self.world
        d = w.data
        idx = w.arms[arm.name]
        base_T = idx.base_T
        tcp_w = np.eye(4)
        tcp_w[:3, :3] = d.site_xmat[idx.tcp_site].reshape(3, 3)
        tcp_w[:3, 3] = d.site_xpos[idx.tcp_site]
        width = float(d.qpos[idx.finger_qpos].sum())
        return ArmState(
            tcp_pose=matrix_to_pose(np.linalg.inv(base_T) @ tcp_w),
            joint_positions=d.qpos[idx.qpos].copy(),
            joint_velocities=d.qvel[idx.dof].copy(),
            wrench=arm.wrench.copy(),
            gripper_open=float(np.clip(width / GRIPPER_STROKE, 0.0, 1.0)),
            stamp=w.time,
            fault=arm.fault.text if arm.fault else "",
            enabled=arm.fault is None,
        )


_DAMP6 = (IK_DAMPING ** 2) * np.eye(6)
_EYE7 = np.eye(N_JOINTS)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # np.cross is ~10x slower on 3-vectors, and this runs hundreds of times per sim second.
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _cross_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def backend_from_params(params: SimRigParams) -> SimRigBackend:
    """The arm node's driver-table entry: the world the sim node registered as ``sim.world_name``
    (in this process) and the ``sim.*`` parameters -> backend."""
    try:
        world = get_world(params.world_name)
    except LookupError as exc:
        raise ValueError(f"sim.world_name: {exc}") from exc
    return SimRigBackend(world, params)
