"""The teleop node in the in-process sim stack (sim, cameras, arm node, recorder), a probe that
records what flows, and a WebSocket client that speaks the page's protocol."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from websockets.sync.client import ClientConnection, connect

from a2w.arms.component import STATE_TOPIC, TARGET_TOPIC, ArmNode
from a2w.cameras.component import CameraComponent
from a2w.geometry import pose_to_matrix
from a2w.host import Host
from a2w.host.component import Component, NodeHandle
from a2w.host.host import NodeSpec
from a2w.host.params import Params
from a2w.host.qos import QoS
from a2w.msgs.arms import ControlMode, RigState, RigTarget
from a2w.msgs.episode import EpisodeEvent
from a2w.record.component import OUTCOME_TOPIC, RecordNode
from a2w.sim.component import SimNode
from a2w.teleop.component import TeleopNode
from a2w.teleop.session import PROTOCOL

TOKEN = "test-pairing-token"
CAMERA = {"width": 64, "height": 48}
_WORLDS = itertools.count()


class Probe(Component):
    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.lock = threading.Lock()
        self.states: list[RigState] = []
        self.targets: list[RigTarget] = []
        self.outcomes: list[EpisodeEvent] = []
        node.create_subscription(STATE_TOPIC, RigState, self._rec(self.states), QoS.sensor())
        node.create_subscription(TARGET_TOPIC, RigTarget, self._rec(self.targets), QoS.reliable(100))
        node.create_subscription(OUTCOME_TOPIC, EpisodeEvent, self._rec(self.outcomes), QoS.reliable(20))

    def _rec(self, into: list) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self.lock:
                into.append(msg)
        return cb

    def snapshot(self, what: str) -> list:
        with self.lock:
            return list(getattr(self, what))


@dataclass
class Stack:
    host: Host
    teleop: TeleopNode
    probe: Probe
    arm: ArmNode
    root: Path

    @property
    def port(self) -> int:
        return self.teleop.server.port

    def ws_url(self, token: str | None = TOKEN) -> str:
        return f"ws://127.0.0.1:{self.port}/ws" + ("" if token is None else f"?token={token}")

    def wait(self, cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what or cond}; teleop: "
                             f"{self.teleop.diagnostics()}")

    def state(self) -> RigState:
        return self.probe.snapshot("states")[-1]

    def tcp_world(self, arm: int) -> np.ndarray:
        """World position of an arm's measured TCP."""
        st = self.state()
        return (self.teleop.session.arms[arm].base @ pose_to_matrix(st.arm(arm).tcp_pose))[:3, 3]


def start_stack(root: Path, teleop: dict[str, Any] | None = None, camera: dict[str, int] | None = None,
                arm_remaps: dict[str, str] | None = None) -> Stack:
    """The stack; ``camera`` (width, height) for the cameras and the recorder (default 64x48)."""
    cam = camera or CAMERA
    world = f"teleop_test_{next(_WORLDS)}"
    host = Host(diagnostics_period=0.25)
    host.add(NodeSpec(SimNode, "sim_node", params={
        "use_sim_time": True, "world_name": world, "task": "pick_cube", "realtime_factor": 1.0,
        "max_width": cam["width"], "max_height": cam["height"]}))
    host.add(NodeSpec(CameraComponent, "camera_node", params={
        "use_sim_time": True, "driver": "sim", "sim.world_name": world, "fps": 30.0, **cam}))
    arm = host.add(NodeSpec(ArmNode, "arm_node", params={"use_sim_time": True, "backend": "sim",
                                                         "sim.world_name": world}, remaps=arm_remaps or {}))
    host.add(NodeSpec(RecordNode, "record_node", params={"use_sim_time": True, "root": str(root), **cam}))
    tele = host.add(NodeSpec(TeleopNode, "teleop_node", params={
        "use_sim_time": True, "port": 0, "token": TOKEN, "qr": False, **(teleop or {})}))
    probe = host.add(NodeSpec(Probe, "probe", params={"use_sim_time": True}))
    host.start()
    return Stack(host, tele, probe, arm, root)


def arm_msg(pose: np.ndarray | None, grip: bool, trigger: float = 0.0, tracked: bool = True) -> dict:
    return {"tracked": tracked and pose is not None, "pose": None if pose is None else [float(v) for v in pose],
            "grip": grip, "trigger": trigger}


HOME = {"left": np.array([-0.2, 1.0, -0.4, 0, 0, 0, 1.0]), "right": np.array([0.2, 1.0, -0.4, 0, 0, 0, 1.0])}


@dataclass
class Page:
    """A WebSocket client speaking the page's protocol, with a sender thread at ``rate`` Hz whose
    per-arm input (offset from HOME in the XR space, grip, trigger) the test changes."""

    ws: ClientConnection
    rate: float = 60.0
    offset: dict[str, np.ndarray] = field(default_factory=lambda: {a: np.zeros(3) for a in HOME})
    grip: dict[str, bool] = field(default_factory=lambda: {a: False for a in HOME})
    trigger: dict[str, float] = field(default_factory=lambda: {a: 0.0 for a in HOME})
    streaming: bool = False
    received: list[dict] = field(default_factory=list)
    seq: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send_loop, daemon=True),
                         threading.Thread(target=self._recv_loop, daemon=True)]
        for t in self._threads:
            t.start()

    def message(self) -> str:
        arms = {}
        for a in HOME:
            p = HOME[a].copy()
            p[:3] += self.offset[a]
            arms[a] = arm_msg(p, self.grip[a], self.trigger[a])
        self.seq += 1
        return json.dumps({"v": PROTOCOL, "type": "pose", "seq": self.seq, "arms": arms})

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            if self.streaming:
                try:
                    self.ws.send(self.message())
                except Exception:  # noqa: BLE001 - the socket closed under us: the test decides
                    return
            time.sleep(1.0 / self.rate)

    def _recv_loop(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.ws.recv(timeout=0.1)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - closed
                return
            with self.lock:
                self.received.append(json.loads(raw))

    def last(self, kind: str) -> dict | None:
        with self.lock:
            return next((m for m in reversed(self.received) if m.get("type") == kind), None)

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [m for m in self.received if m.get("type") == kind]

    def send(self, raw: str | bytes) -> None:
        self.ws.send(raw)

    def close(self) -> None:
        self._stop.set()
        self.ws.close()
        for t in self._threads:
            t.join(5)


OPEN_PAGES: list[Page] = []  # closed after each test, so a failed test leaves no page driving the arms


def open_page(stack: Stack, token: str | None = TOKEN) -> Page:
    ws = connect(stack.ws_url(token), open_timeout=10)
    page = Page(ws.__enter__())  # what `with` does; the page outlives this call
    OPEN_PAGES.append(page)
    return page


def teleop_mode(stack: Stack) -> bool:
    return stack.state().mode is ControlMode.TELEOP
