"""One Flexiv arm's RDK process: every RDK call of that arm happens here, never in the node.

Why a process: the ``Robot`` constructor holds the GIL for seconds, and whether other blocking
calls release it is unverified (flexiv_facts.md §0.6, §4.1), so in the node's process any RDK
call could freeze the other arm, the watchdog and the publishers. Here it can only stall this
arm, whose own dead-man (below) still holds.

Run as ``python -m a2w.arms.flexiv.worker --fd N --slot PATH [--rdk-module M]`` by
``a2w.arms.flexiv.backend``. Stdlib + the RDK only (this runs in the RDK's Python 3.12 venv). RDK names
come through ``RdkBinding`` (the ``rdk_api`` table). Quaternions stay in RDK order (w, x, y, z):
the conversion is the parent's job.

Call order follows flexiv_facts.md §8: bring-up (construct, info, operator states, clear fault,
Enable, wait operational, Tool, gripper, SwitchMode, mode settings, seed from measured), streaming
(``SendCartesianMotionForce`` of the newest target each tick), recovery (Stop, ClearFault,
Enable, wait, re-enter the mode), shutdown (Stop, gripper Stop/Disable, delete helpers, Robot).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from a2w.arms.flexiv.gripper import DEADBAND_M, MoveTracker, clamp_to_range
from a2w.arms.flexiv.link import TargetSlot
from a2w.arms.flexiv.rdk_api import ESTOP_STATES, OPERATOR_ACTIONS, OPERATOR_STATES, RdkBinding

log = logging.getLogger("a2w.flexiv_worker")

ERROR_LEVELS = ("ERROR", "CRITICAL")


class WorkerError(Exception):
    """A request failed; ``kind`` lets the parent map it to the right exception."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text


def classify_construct_error(exc: BaseException) -> str:
    """flexiv_facts.md §1.2: ValueError = bad serial; "Failed to connect" = not reachable or an
    RDK/FSP mismatch; "not supported" = wrong library line or model."""
    text = str(exc)
    if isinstance(exc, ValueError):
        return "config"
    if "not supported" in text:
        return "unsupported"
    if "Failed to connect" in text or "Failed to sync" in text:
        return "not_found"
    return "other"


class Worker:
    def __init__(self, conn: Connection, rdk: RdkBinding, slot: TargetSlot, arm: str) -> None:
        self.conn = conn
        self.rdk = rdk
        self.slot = slot
        self.arm = arm
        self.cfg: dict[str, Any] = {}
        self.robot: Any = None
        self.tool: Any = None
        self.gripper: Any = None
        self.gripper_params: dict[str, float] = {}
        self.streaming = False  # in NRT_CARTESIAN_MOTION_FORCE and allowed to send
        self.last_seq = 0
        self.accept_after_seq = 0  # targets written before a stop/recovery are never sent
        self.last_target_mono = 0.0
        self.fault_text = ""
        self.last_status = ""
        self.grip_sent = math.nan
        self.grip_sent_at = -math.inf
        self.grip_tracker: MoveTracker | None = None
        self.running = True
        self.sent = 0

    # -- messaging ------------------------------------------------------------------------
    def send(self, *msg: Any) -> None:
        try:
            self.conn.send(msg)
        except (BrokenPipeError, OSError):
            self.running = False

    def note(self, level: str, text: str) -> None:
        self.send("log", level, f"[{self.arm}] {text}")

    # -- requests -------------------------------------------------------------------------
    def handle(self, op: str, rid: int, payload: Any) -> None:
        fn = getattr(self, f"op_{op}", None)
        try:
            if fn is None:
                raise WorkerError("other", f"unknown request {op!r}")
            result = fn(payload)
        except WorkerError as exc:
            self.send("reply", rid, False, None, exc.kind, exc.text)
        except Exception as exc:  # noqa: BLE001 - the robot's text goes to the parent verbatim
            self.send("reply", rid, False, None, "other", f"{type(exc).__name__}: {exc}")
        else:
            if rid >= 0:
                self.send("reply", rid, True, result, "", "")

    def op_connect(self, cfg: dict[str, Any]) -> dict[str, Any]:
        self.cfg = cfg
        r = self.rdk
        try:
            robot = r.new("Robot", cfg["serial"], list(cfg["nics"]), verbose=False)
        except Exception as exc:  # noqa: BLE001
            raise WorkerError(classify_construct_error(exc), str(exc)) from None
        self.robot = robot
        info = r.call(robot, "Robot.info")
        dof = int(r.field(info, "RobotInfo.DoF"))
        details = {
            "serial": str(r.field(info, "RobotInfo.serial_num")),
            "software_ver": str(r.field(info, "RobotInfo.software_ver")),
            "model": str(r.field(info, "RobotInfo.model_name")),
            "has_ft_sensor": bool(r.field(info, "RobotInfo.has_FT_sensor")),
            "dof": dof,
        }
        self.note("info", f"connected: {details}")
        if dof != 7:
            raise WorkerError("config", f"expected a 7-DoF Rizon, robot reports DoF {dof}")
        self._bring_up()
        return details

    def _status(self) -> str:
        st = self.rdk.call(self.robot, "Robot.operational_status")
        return self.rdk.enum_name("OperationalStatus", st)

    def _bring_up(self) -> None:
        """Operator states, fault, enable, tool, gripper, mode (flexiv_facts.md §8 steps 4-10)."""
        r, robot, cfg = self.rdk, self.robot, self.cfg
        status = self._status()
        if status in ESTOP_STATES or status in OPERATOR_STATES:
            raise WorkerError("operator", f"robot status {status}: {OPERATOR_ACTIONS.get(status, '')}")
        if r.call(robot, "Robot.fault"):
            if not r.call(robot, "Robot.ClearFault", timeout_sec=int(cfg["clear_fault_timeout"])):
                raise WorkerError("power_cycle", f"ClearFault failed ({self._last_event()}): power-cycle the robot")
        if not r.call(robot, "Robot.estop_released"):
            raise WorkerError("operator", "e-stop is pressed: release it first")
        r.call(robot, "Robot.Enable")
        deadline = time.monotonic() + float(cfg["enable_timeout"])
        while not r.call(robot, "Robot.operational"):
            if time.monotonic() > deadline:
                raise WorkerError("other", f"not operational {cfg['enable_timeout']} s after "
                                           f"Enable (status {self._status()})")
            time.sleep(0.2)  # flexiv_ros2 polls every 200 ms
        tool_name = cfg["tool_name"]
        if tool_name and self.tool is None:
            self.tool = r.new("Tool", robot)
            if not r.call(self.tool, "Tool.exist", tool_name):
                raise WorkerError("config", f"tool {tool_name!r} is not defined in Elements")
            r.call(self.tool, "Tool.Switch", tool_name)  # IDLE only, before SwitchMode
        grip = cfg["gripper"]
        if grip.get("interface") == "rdk_device" and self.gripper is None:
            g = r.new("Gripper", robot)
            r.call(g, "Gripper.Enable", grip["device_name"])
            p = r.call(g, "Gripper.params")
            self.gripper_params = {k: float(r.field(p, f"GripperParams.{k}")) for k in (
                "min_width", "max_width", "min_vel", "max_vel", "min_force", "max_force")}
            self.gripper = g
        self._enter_mode()

    def _enter_mode(self) -> None:
        """SwitchMode, then every mode setting again (they reset on entry, §2.4), then hold."""
        r, robot, cfg = self.rdk, self.robot, self.cfg
        r.call(robot, "Robot.SwitchMode", r.enum("Mode.NRT_CARTESIAN_MOTION_FORCE"))
        if cfg.get("stiffness"):
            r.call(robot, "Robot.SetCartesianImpedance", K_x=list(cfg["stiffness"]), Z_x=[0.7] * 6)
        if cfg.get("max_contact_wrench"):
            r.call(robot, "Robot.SetMaxContactWrench", max_wrench=list(cfg["max_contact_wrench"]))
        self._send_hold()
        cur = self.slot.read()
        self.accept_after_seq = cur.seq if cur is not None else 0
        self.last_target_mono = time.monotonic()
        self.streaming = True
        self.fault_text = ""

    def _send_hold(self) -> None:
        r = self.rdk
        pose = list(r.field(r.call(self.robot, "Robot.states"), "RobotStates.tcp_pose"))
        self._send(pose, self.cfg["limits"])

    def _send(self, pose: list[float], limits: tuple[float, ...]) -> None:
        self.rdk.call(self.robot, "Robot.SendCartesianMotionForce", pose=pose, wrench=[0.0] * 6,
                      velocity=[0.0] * 6,  # 0 is the robust choice (#145)
                      max_linear_vel=limits[0], max_angular_vel=limits[1],
                      max_linear_acc=limits[2], max_angular_acc=limits[3])
        self.sent += 1

    def op_stop(self, _: Any) -> None:
        if self.robot is None:
            return
        self.streaming = False
        cur = self.slot.read()
        self.accept_after_seq = cur.seq if cur is not None else 0
        self.rdk.call(self.robot, "Robot.Stop")  # blocks until still; returns at once if faulted (1.9.3+)

    def op_recover(self, _: Any) -> None:
        """flexiv_facts.md §8 step 14; refused for operator states."""
        if self.robot is None:
            raise WorkerError("other", "not connected")
        r, robot = self.rdk, self.robot
        status = self._status()
        if status in ESTOP_STATES or status in OPERATOR_STATES:
            raise WorkerError("operator", f"robot status {status}: {OPERATOR_ACTIONS.get(status, '')}")
        self.streaming = False
        r.call(robot, "Robot.Stop")
        if r.call(robot, "Robot.fault"):
            if not r.call(robot, "Robot.ClearFault", timeout_sec=int(self.cfg["clear_fault_timeout"])):
                raise WorkerError("power_cycle", f"ClearFault failed ({self._last_event()}): power-cycle the robot")
        self._bring_up()

    def op_close(self, _: Any) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """flexiv_facts.md §8 step 15: stop, gripper stop/disable, delete helpers and Robot."""
        r = self.rdk
        self.running = False
        self.streaming = False
        for step in ("stop", "gripper"):
            try:
                if step == "stop" and self.robot is not None:
                    r.call(self.robot, "Robot.Stop")
                elif step == "gripper" and self.gripper is not None:
                    r.call(self.gripper, "Gripper.Stop")
                    r.call(self.gripper, "Gripper.Disable")
            except Exception as exc:  # noqa: BLE001 - keep shutting down
                self.note("warning", f"shutdown {step}: {exc}")
        self.gripper = None
        self.tool = None
        self.robot = None  # the destructor stops RDK services ("Flexiv RDK exited", §2.1)

    # -- streaming tick -------------------------------------------------------------------
    def _last_event(self) -> str:
        try:
            events = self.rdk.call(self.robot, "Robot.event_log")
        except Exception:  # noqa: BLE001
            return ""
        for ev in reversed(list(events)):
            level = self.rdk.enum_name("RobotEvent", self.rdk.field(ev, "RobotEvent.level"))
            if any(lv in level for lv in ERROR_LEVELS):
                text = str(self.rdk.field(ev, "RobotEvent.description"))
                action = str(self.rdk.field(ev, "RobotEvent.recommended_actions"))
                return f"{text} ({action})" if action else text
        return ""

    def tick(self) -> None:
        r, robot = self.rdk, self.robot
        now = time.monotonic()
        st = r.call(robot, "Robot.states")
        status = self._status()
        faulted = bool(r.call(robot, "Robot.fault"))
        connected = bool(r.call(robot, "Robot.connected"))
        if (faulted or status != "READY") and self.streaming:
            self.streaming = False
            self.fault_text = self._last_event() or f"robot status {status}"
            self.note("error", f"streaming stopped: {self.fault_text}")
        elif status != self.last_status and status != "READY" and not self.fault_text:
            self.fault_text = f"robot status {status}"
        self.last_status = status
        tgt = self.slot.read()
        if tgt is not None and tgt.seq > max(self.last_seq, self.accept_after_seq) and not faulted:
            self.last_seq = tgt.seq
            try:
                if not self.streaming and status == "READY":
                    self._enter_mode()  # after a stop(): the next command restarts streaming
                    self.accept_after_seq = 0
                if self.streaming:
                    self._send(list(tgt.pose), tgt.limits)
                    self.last_target_mono = now
                    self._gripper_command(tgt.gripper_width, now)
            except Exception as exc:  # noqa: BLE001
                self.streaming = False
                self.fault_text = f"command refused: {exc}"
                self.note("error", self.fault_text)
        if self.streaming and now - self.last_target_mono > float(self.cfg["deadman_stop"]):
            # Our own dead-man: the robot's reaction to a silent host is undocumented (§6, #169).
            self.note("warning", "no target from the node: dead-man stop")
            self.op_stop(None)
        grip = self._gripper_state(now)
        self.send("state", {
            "t": time.time(),
            "tcp_pose": list(r.field(st, "RobotStates.tcp_pose")),
            "q": list(r.field(st, "RobotStates.q")),
            "dq": list(r.field(st, "RobotStates.dtheta")),  # motor side, as flexiv_ros2 publishes
            "wrench": list(r.field(st, "RobotStates.ext_wrench_in_world")),
            "status": status, "fault": faulted, "connected": connected,
            "fault_text": self.fault_text, "streaming": self.streaming, "sent": self.sent,
            **grip,
        })

    def _gripper_command(self, width: float, now: float) -> None:
        if self.gripper is None or math.isnan(width):
            return
        p = self.gripper_params
        w = clamp_to_range(width, p["min_width"], p["max_width"])
        if abs(w - self.grip_sent) <= DEADBAND_M or now - self.grip_sent_at < 0.1:
            return
        cfg = self.cfg["gripper"]
        vel = clamp_to_range(cfg["velocity"], p["min_vel"], p["max_vel"])
        force = clamp_to_range(cfg["force"], p["min_force"], p["max_force"])
        self.rdk.call(self.gripper, "Gripper.Move", width=w, velocity=vel, force_limit=force)
        self.grip_sent, self.grip_sent_at = w, now
        self.grip_tracker = MoveTracker(w, now)

    def _gripper_state(self, now: float) -> dict[str, Any]:
        if self.gripper is None:
            return {}
        r = self.rdk
        gs = r.call(self.gripper, "Gripper.states")
        width = float(r.field(gs, "GripperStates.width"))
        moving = bool(r.field(gs, "GripperStates.is_moving"))
        result = self.grip_tracker.update(width, moving, now) if self.grip_tracker else ""
        return {"gripper_width": width, "gripper_force": float(r.field(gs, "GripperStates.force")),
                "gripper_moving": moving, "gripper_result": result,
                "gripper_range": [self.gripper_params["min_width"], self.gripper_params["max_width"]]}

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> None:
        parent = os.getppid()
        next_t = time.monotonic()
        while self.running:
            try:
                while self.running and self.conn.poll(0):
                    op, rid, payload = self.conn.recv()
                    self.handle(op, rid, payload)
            except (EOFError, OSError):
                self.note("warning", "node connection lost")
                self.shutdown()
                break
            if os.getppid() != parent:  # the node died: stop the arm, do not linger
                self.shutdown()
                break
            if self.robot is not None and self.running:
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001
                    self.fault_text = f"state read failed: {exc}"
                    self.streaming = False
                    self.send("state", {"t": time.time(), "error": self.fault_text, "connected": False})
            period = 1.0 / float(self.cfg.get("rate", 100.0))
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:
                next_t = time.monotonic()  # fell behind (a blocking call): resynchronise
            elif delay > 0:
                # Wake early for requests: poll the connection while waiting.
                self.conn.poll(delay)


def rdk_version(module: Any) -> str:
    """Distribution version (the 1.9.3 wheel's ``__version__`` says 1.9.2; 1.8.1's says 1.8.0)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(module.__name__.split(".")[0])
    except (ImportError, PackageNotFoundError, ValueError):
        return str(getattr(module, "__version__", "0"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--slot", required=True)
    ap.add_argument("--arm", default="arm")
    ap.add_argument("--rdk-module", default="flexivrdk")
    args = ap.parse_args(argv)
    conn = Connection(args.fd)
    try:
        mod = importlib.import_module(args.rdk_module)
    except Exception as exc:  # noqa: BLE001
        conn.send(("hello", {"ok": False, "error": f"cannot import {args.rdk_module!r} with "
                                                   f"{sys.executable} ({type(exc).__name__}: {exc})"}))
        return 2
    conn.send(("hello", {"ok": True, "version": rdk_version(mod),
                         "module_version": str(getattr(mod, "__version__", "")),
                         "python": sys.version.split()[0], "pid": os.getpid()}))
    slot = TargetSlot(args.slot)
    worker = Worker(conn, RdkBinding(mod), slot, args.arm)
    try:
        worker.run()
    except Exception:  # noqa: BLE001
        worker.note("error", "worker crashed: " + traceback.format_exc(limit=5))
        worker.shutdown()
        return 1
    finally:
        slot.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
