"""RigBackend for two Flexiv Rizon 4S arms through the Flexiv RDK (1.x line, NRT Cartesian), and
the arm node's factory of it (``backend_from_params``).

Each arm gets its own worker process (``a2w.arms.flexiv.worker``) that makes every RDK call, so
a blocking call (the constructor holds the GIL ~3 s; SwitchMode, ClearFault, Enable block) never
freezes the node, the other arm or the watchdog (flexiv_facts.md §0.6, §4.1). This class only
moves data: requests over a socket, targets through a shared slot (never blocks), states back.

This is the one place where quaternions change order: the runtime is (x, y, z, w), the RDK
(w, x, y, z) (flexiv_facts.md §0.5, docs/architecture.md §5).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from a2w.arms.backend import (
    ArmConnectionError,
    ArmError,
    ArmFaultError,
    Fault,
    FaultKind,
    RecoveryRefused,
    RigBackend,
)
from a2w.arms.flexiv.gripper import STROKE_M, open_to_width, width_to_open
from a2w.arms.flexiv.link import TargetSlot
from a2w.arms.flexiv.params import FlexivParams
from a2w.arms.flexiv.rdk_api import (
    ESTOP_STATES,
    OPERATOR_ACTIONS,
    OPERATOR_STATES,
    PINNED_VERSION,
    check_rdk_line,
    fsp_for_rdk,
    versions_match,
)
from a2w.geometry import wxyz_to_xyzw, xyzw_to_wxyz
from a2w.msgs.arms import ARM_NAMES, ArmState, ArmTarget
from a2w.msgs.common import Pose

log = logging.getLogger(__name__)

_A2W_ROOT = str(Path(__file__).resolve().parents[3])  # the folder holding the a2w package


# Robot-side motion limits sent with every target (our own clamps run before, in the node):
# max linear vel (m/s), angular vel (rad/s), linear acc (m/s^2), angular acc (rad/s^2).
ROBOT_LIMITS = (0.5, 1.0, 2.0, 5.0)
CLEAR_FAULT_TIMEOUT = 30  # s the worker waits for ClearFault
DEADMAN_STOP = 1.0  # s without a target -> the worker stops the arm by itself


class _ArmWorker:
    """The parent's end of one worker process."""

    def __init__(self, index: int, cfg: FlexivParams) -> None:
        self.index = index
        self.name = ARM_NAMES[index]
        self.cfg = cfg
        fd, path = tempfile.mkstemp(prefix=f"a2w-flexiv-{self.name}-", dir=_shm_dir())
        os.close(fd)
        self.slot = TargetSlot(path, create=True)
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_A2W_ROOT, *cfg.worker_pythonpath,
                                             *filter(None, [env.get("PYTHONPATH", "")])])
        python = cfg.worker_python or sys.executable
        try:
            self.proc = subprocess.Popen(
                [python, "-m", "a2w.arms.flexiv.worker", "--fd", str(child_sock.fileno()),
                 "--slot", path, "--arm", self.name, "--rdk-module", cfg.rdk_module],
                pass_fds=(child_sock.fileno(),), env=env, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.slot.close()
            os.unlink(path)
            raise ArmConnectionError(f"{self.name} arm: cannot start the RDK worker with {python!r}: {exc}") from exc
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self._send_lock = threading.Lock()
        self._rid = itertools.count()
        self._replies: dict[int, tuple[bool, Any, str, str]] = {}
        self._cond = threading.Condition()
        self.hello: dict[str, Any] | None = None
        self.state: dict[str, Any] | None = None
        self.dead = ""
        self._reader = threading.Thread(target=self._read, name=f"flexiv-{self.name}-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                break
            kind = msg[0]
            if kind == "state":
                self.state = msg[1]
            elif kind == "reply":
                with self._cond:
                    self._replies[msg[1]] = msg[2:]
                    self._cond.notify_all()
            elif kind == "hello":
                with self._cond:
                    self.hello = msg[1]
                    self._cond.notify_all()
            elif kind == "log":
                getattr(log, msg[1], log.info)("flexiv %s", msg[2])
        code = self.proc.poll()
        with self._cond:
            self.dead = f"RDK worker of the {self.name} arm exited" + (f" (code {code})" if code is not None else "")
            self._cond.notify_all()

    def wait_hello(self, timeout: float) -> dict[str, Any]:
        with self._cond:
            self._cond.wait_for(lambda: self.hello is not None or self.dead, timeout)
        if self.hello is None:
            raise ArmConnectionError(self.dead or f"{self.name} arm: RDK worker did not start within {timeout} s")
        if not self.hello.get("ok"):
            raise ArmConnectionError(f"{self.name} arm: {self.hello.get('error')}. Build the RDK venv with "
                                     f"scripts/setup_flexiv_venv.sh and set flexiv.worker_python")
        return self.hello

    def post(self, op: str, payload: Any = None) -> int:
        rid = next(self._rid)
        try:
            with self._send_lock:
                self.conn.send((op, rid, payload))
        except (OSError, ValueError) as exc:
            raise ArmError(f"{self.name} arm: RDK worker unreachable ({exc})") from exc
        return rid

    def wait(self, rid: int, timeout: float) -> Any:
        with self._cond:
            self._cond.wait_for(lambda: rid in self._replies or bool(self.dead), timeout)
            reply = self._replies.pop(rid, None)
        if reply is None:
            raise ArmError(self.dead if self.dead else f"{self.name} arm: no reply within {timeout:.0f} s")
        success, result, kind, text = reply
        if not success:
            raise _WorkerFailure(self.name, kind, text)
        return result

    def request(self, op: str, payload: Any = None, timeout: float = 10.0) -> Any:
        return self.wait(self.post(op, payload), timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                self.request("close", None, timeout)
            except ArmError as exc:
                log.warning("%s arm: close request: %s", self.name, exc)
            try:
                self.proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3.0)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.conn.close()
        self._reader.join(2.0)
        self.slot.close()
        try:
            os.unlink(self.slot.path)
        except FileNotFoundError:
            pass


class _WorkerFailure(ArmError):
    def __init__(self, arm: str, kind: str, text: str) -> None:
        super().__init__(f"{arm} arm: {text}")
        self.arm = arm
        self.kind = kind
        self.text = text


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def classify_fault_text(text: str) -> FaultKind:
    t = text.lower()
    if "limit" in t and ("joint" in t or "position" in t):
        return FaultKind.JOINT_LIMIT
    if any(w in t for w in ("collision", "force", "torque", "contact", "wrench")):
        return FaultKind.EXCESSIVE_FORCE
    return FaultKind.OTHER


class FlexivRigBackend(RigBackend):
    """Two Rizon 4S arms (index 0 left, 1 right), one RDK worker process each."""

    joint_names = (tuple(f"left_joint{i + 1}" for i in range(7)),
                   tuple(f"right_joint{i + 1}" for i in range(7)))

    def __init__(self, cfg: FlexivParams) -> None:
        cfg.check()
        self.cfg = cfg
        self._workers: list[_ArmWorker] = []
        self._info: list[dict[str, Any]] = [{}, {}]
        self._connected = False
        self._last_grip = [1.0, 1.0]
        self.rdk_version = ""

    @property
    def command_rate(self) -> float:
        return self.cfg.rate

    # -- bring-up -------------------------------------------------------------------------
    def _check_versions(self, version: str) -> None:
        """flexiv_facts.md §0.1-§0.2: refuse the 2.x line; the RDK must match the robots' FSP."""
        cfg = self.cfg
        problem = check_rdk_line(version)
        if problem:
            raise ArmConnectionError(problem)
        if not cfg.software_version:
            raise ArmConnectionError(
                "flexiv.software_version is unset: read the robots' software (FSP) version in "
                "Flexiv Elements and configure it (flexiv_facts.md §9.1); the RDK must match it")
        paired = fsp_for_rdk(version)
        if paired is None:
            msg = (f"flexivrdk {version} has no verified FSP pairing (known: 1.7-3.9, 1.8-3.10, "
                   f"1.9-3.11, 1.9.1-3.11.1, 1.9.3-3.11.2); the pinned release is {PINNED_VERSION}")
            if not cfg.accept_unverified_pairing:
                raise ArmConnectionError(msg + "; set flexiv.accept_unverified_pairing to try anyway")
            log.warning(msg)
        elif not versions_match(paired, cfg.software_version):
            raise ArmConnectionError(
                f"flexivrdk {version} is for FSP {paired}, the robots run FSP {cfg.software_version}: "
                f"a mismatch looks exactly like 'robot not found' (flexiv_facts.md §0.2); install the "
                f"matching flexivrdk")

    def _worker_cfg(self, i: int) -> dict[str, Any]:
        c = self.cfg
        return {
            "serial": c.serials[i], "nics": list(c.nics[i]), "rate": c.rate, "tool_name": c.tool_name,
            "gripper": {"interface": c.gripper_interface, "device_name": c.gripper_device,
                        "velocity": c.gripper_velocity, "force": c.gripper_force},
            "stiffness": list(c.cartesian_stiffness), "max_contact_wrench": list(c.max_contact_wrench),
            "limits": list(ROBOT_LIMITS), "enable_timeout": c.enable_timeout,
            "clear_fault_timeout": CLEAR_FAULT_TIMEOUT, "deadman_stop": DEADMAN_STOP,
        }

    def _connection_error(self, failures: list[_WorkerFailure]) -> ArmConnectionError:
        parts = []
        for f in failures:
            i = ARM_NAMES.index(f.arm)
            where = (f"serial {self.cfg.serials[i]!r}, NICs {list(self.cfg.nics[i]) or 'all'}, "
                     f"flexivrdk {self.rdk_version}, FSP configured {self.cfg.software_version or 'unset'}")
            if f.kind == "config":
                hint = "configuration error (check the serial number, e.g. Rizon4s-062000)"
            elif f.kind == "not_found":
                hint = ("robot not found: check Remote mode (Ethernet) is on, the cable/NIC, the serial, "
                        "the firewall, and that flexivrdk matches the robot's FSP; retry after >= 5 s")
            elif f.kind == "unsupported":
                hint = "this flexivrdk does not support that robot model (wrong library line or model name)"
            elif f.kind == "operator":
                hint = "the robot needs the operator"
            elif f.kind == "power_cycle":
                hint = "fault cannot be cleared from software"
            else:
                hint = "bring-up failed"
            parts.append(f"{f.arm} arm: {hint} [{where}]: {f.text}")
        err = ArmConnectionError("; ".join(parts))
        err.kinds = [f.kind for f in failures]  # type: ignore[attr-defined]
        return err

    def connect(self) -> None:
        if self._connected:
            return
        problem = self.cfg.gripper_problem()
        if problem:
            raise ArmConnectionError(problem)
        try:
            self._workers = [_ArmWorker(i, self.cfg) for i in range(2)]
            hellos = [w.wait_hello(self.cfg.hello_timeout) for w in self._workers]
            self.rdk_version = str(hellos[0]["version"])
            log.info("RDK workers up: flexivrdk %s (module says %s), Python %s", self.rdk_version,
                     hellos[0].get("module_version"), hellos[0].get("python"))
            self._check_versions(self.rdk_version)
            # Both arms are brought up in parallel (each in its own process).
            rids = [w.post("connect", self._worker_cfg(i)) for i, w in enumerate(self._workers)]
            failures: list[_WorkerFailure] = []
            for i, (w, rid) in enumerate(zip(self._workers, rids)):
                try:
                    self._info[i] = w.wait(rid, self.cfg.connect_timeout)
                except _WorkerFailure as exc:
                    failures.append(exc)
            if failures:
                raise self._connection_error(failures)
            for i, info in enumerate(self._info):
                if not versions_match(self.cfg.software_version, info.get("software_ver", "")):
                    raise ArmConnectionError(
                        f"{ARM_NAMES[i]} arm reports software {info.get('software_ver')!r}, configured "
                        f"flexiv.software_version is {self.cfg.software_version!r}")
            deadline = time.monotonic() + 5.0
            while any(w.state is None for w in self._workers) and time.monotonic() < deadline:
                time.sleep(0.01)
            if any(w.state is None for w in self._workers):
                raise ArmConnectionError("connected, but no state arrived from the RDK workers")
        except ArmError as exc:
            self._close_workers()
            if isinstance(exc, ArmConnectionError):
                raise
            raise ArmConnectionError(str(exc)) from exc
        self._connected = True
        log.info("Flexiv arms up: %s", self._info)

    # -- interface ------------------------------------------------------------------------
    def _require(self) -> None:
        if not self._connected:
            raise ArmConnectionError("Flexiv backend is not connected: call connect() first")

    def _arm_state(self, i: int) -> ArmState:
        w = self._workers[i]
        st = w.state
        if st is None or "tcp_pose" not in st:
            raise ArmError(w.dead or f"{w.name} arm: no state from the robot")
        pose = np.asarray(st["tcp_pose"], dtype=float)
        q = wxyz_to_xyzw(pose[3:7])
        q = q / np.linalg.norm(q)
        if "gripper_width" in st:
            lo, hi = st.get("gripper_range", (0.0, STROKE_M))
            grip = width_to_open(st["gripper_width"], lo, hi)
        else:
            grip = self._last_grip[i]  # no gripper feedback: report what was commanded
        fault = self.fault(i)
        return ArmState(Pose(pose[:3], q), np.asarray(st["q"][:7]), np.asarray(st["dq"][:7]),
                        np.asarray(st["wrench"][:6]), grip, float(st["t"]),
                        fault.text if fault else "", st.get("status") == "READY")

    def read(self) -> tuple[ArmState, ArmState]:
        self._require()
        return self._arm_state(0), self._arm_state(1)

    def command(self, targets: tuple[ArmTarget, ArmTarget]) -> None:
        self._require()
        for i in range(2):
            f = self.fault(i)
            if f is not None:
                raise ArmFaultError(f)
        for i, (w, t) in enumerate(zip(self._workers, targets)):
            pose = (*map(float, t.tcp_pose.position), *map(float, xyzw_to_wxyz(t.tcp_pose.quaternion)))
            st = w.state or {}
            lo, hi = st.get("gripper_range", (0.0, STROKE_M))
            width = open_to_width(t.gripper_open, lo, hi) if "gripper_range" in st else math.nan
            self._last_grip[i] = float(t.gripper_open)
            w.slot.write(time.time(), pose, width, ROBOT_LIMITS)

    def stop(self) -> None:
        self._require()
        for w in self._workers:
            w.post("stop")  # the worker blocks in Stop(), not us

    def fault(self, arm: int) -> Fault | None:
        if arm not in (0, 1):
            raise ValueError(f"arm: must be 0 (left) or 1 (right), got {arm!r}")
        if not self._workers:
            return None
        w = self._workers[arm]
        if w.dead:
            return Fault(arm, FaultKind.COMMUNICATION, w.dead)
        st = w.state or {}
        if not st.get("connected", True) or "error" in st:
            return Fault(arm, FaultKind.COMMUNICATION, st.get("error") or "robot connection lost")
        status = st.get("status", "READY")
        text = st.get("fault_text", "")
        if status in ESTOP_STATES:
            return Fault(arm, FaultKind.ESTOP, f"{text or status}: {OPERATOR_ACTIONS[status]}")
        if status in OPERATOR_STATES:
            return Fault(arm, FaultKind.OPERATOR, f"{text or status}: {OPERATOR_ACTIONS[status]}")
        if st.get("fault") or status != "READY" or text:
            return Fault(arm, classify_fault_text(text), text or f"robot status {status}")
        return None

    def clear_fault(self) -> None:
        self._require()
        faults = [f for f in (self.fault(0), self.fault(1)) if f is not None]
        refused = [f for f in faults if not f.recoverable]
        if refused:
            raise RecoveryRefused("; ".join(f"{ARM_NAMES[f.arm]} arm: {f.text}" for f in refused))
        timeout = self.cfg.enable_timeout + CLEAR_FAULT_TIMEOUT + 15.0
        pending = []
        for f in faults:
            w = self._workers[f.arm]
            if w.dead:
                # flexiv_facts.md §8 step 14: lost connection -> new Robot from step 2.
                w.close()
                nw = _ArmWorker(f.arm, self.cfg)
                self._workers[f.arm] = nw
                nw.wait_hello(self.cfg.hello_timeout)
                pending.append((nw, nw.post("connect", self._worker_cfg(f.arm))))
            else:
                pending.append((w, w.post("recover")))
        errors = []
        for w, rid in pending:
            try:
                w.wait(rid, timeout)
            except _WorkerFailure as exc:
                if exc.kind == "operator":
                    errors.append(RecoveryRefused(str(exc)))
                else:
                    errors.append(exc)
            except ArmError as exc:
                errors.append(exc)
        if errors:
            if any(isinstance(e, RecoveryRefused) for e in errors):
                raise RecoveryRefused("; ".join(map(str, errors)))
            raise ArmError("; ".join(map(str, errors)))
        # Both arms must be clear before anyone resumes (a pair, §8 step 14).
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            fresh = all(w.state is not None and "tcp_pose" in w.state for w in self._workers)
            if fresh and all(self.fault(i) is None for i in range(2)):
                return
            time.sleep(0.02)
        raise ArmError("recovery finished but a fault is still reported: "
                       + "; ".join(str(self.fault(i)) for i in range(2)))

    def _close_workers(self) -> None:
        ws, self._workers = self._workers, []
        threads = [threading.Thread(target=w.close, daemon=True) for w in ws]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20.0)

    def close(self) -> None:
        self._connected = False
        self._close_workers()


def backend_from_params(params: FlexivParams) -> FlexivRigBackend:
    """The arm node's driver-table entry: the ``flexiv.*`` parameters -> backend."""
    try:
        return FlexivRigBackend(params)
    except ValueError as exc:
        raise ValueError(f"arm node: {exc}") from exc
