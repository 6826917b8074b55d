"""The policy node in the in-process sim stack (sim, cameras, arm node with its safety layers), with a
probe that records what flows and a relay that can starve or skew one camera view.

The model behind the node is either the tiny random checkpoint (``tiny_checkpoint``) or a scripted
"model" (``PathModel``) put in the inference worker's place, so that a test can choose what a chunk
holds (a known path, NaN, an exception, a slow answer) while everything around it is the real node.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from a2w.actions import decode_dual, encode_dual
from a2w.arms.component import SET_MODE_SERVICE, STATE_TOPIC, STATUS_TOPIC, TARGET_TOPIC, ArmNode
from a2w.cameras.component import CameraComponent
from a2w.host import Host
from a2w.host.component import Component, NodeHandle
from a2w.host.host import NodeSpec
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmsStatus, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.msgs.diagnostics import DiagnosticStatus
from a2w.msgs.policy import ActionChunk
from a2w.msgs.services import SetControlModeRequest, SetInstructionRequest, StartPolicyRequest, StopRequest
from a2w.policy.component import PolicyNode
from a2w.policy.topics import CHUNK_TOPIC, INSTRUCTION_SERVICE, PAUSE_SERVICE, START_SERVICE, STOP_SERVICE
from a2w.sim.component import SimNode

INSTRUCTION = "pick up the cube"
CAMERA = {"width": 64, "height": 48}
PERIOD = 1.0 / 30.0
_WORLDS = itertools.count()


def tiny_checkpoint(directory: Path) -> Path:
    from a2world.policy.bundle import write_random_bundle

    return write_random_bundle(directory, [INSTRUCTION, "lift the box with both arms"], image_size=(32, 32))


@dataclass
class RelayParams(Params):
    views: list[str] = param(list(VIEW_NAMES), "views to forward")


class Relay(Component):
    """Forwards /cameras/<view>/color/image_raw to /relay/<view>/...; ``drop`` views are not forwarded,
    ``freeze`` views repeat the last image they forwarded with new stamps (a hung driver), and ``skew``
    adds seconds to a view's stamps (cameras drifting apart)."""

    Params = RelayParams

    def __init__(self, node: NodeHandle, params: RelayParams) -> None:
        super().__init__(node, params)
        self.drop: set[str] = set()
        self.freeze: set[str] = set()
        self._last: dict[str, np.ndarray] = {}
        self.skew: dict[str, float] = {}
        self.pubs = {v: node.create_publisher(f"/relay/{v}/color/image_raw", CameraFrame, QoS.sensor())
                     for v in params.views}
        for v in params.views:
            node.create_subscription(f"/cameras/{v}/color/image_raw", CameraFrame, self._forward, QoS.sensor())

    def _forward(self, f: CameraFrame) -> None:
        if f.view in self.drop:
            return
        if f.view in self.freeze and f.view in self._last:
            f = CameraFrame(f.view, self._last[f.view], f.stamp, f.intrinsics, frame_id=f.frame_id)
        self._last[f.view] = f.image
        dt = self.skew.get(f.view, 0.0)
        if dt:
            f = CameraFrame(f.view, f.image, f.stamp + dt, f.intrinsics, frame_id=f.frame_id)
        self.pubs[f.view].publish(f)


@dataclass
class Probe(Component):
    """Records targets (with the clock time they arrived), states, the arms' status, chunks and the
    policy node's diagnostics; calls the arm node's mode service for a test."""

    def __init__(self, node: NodeHandle, params: Params) -> None:
        super().__init__(node, params)
        self.lock = threading.Lock()
        self.targets: list[tuple[float, RigTarget]] = []
        self.states: list[RigState] = []
        self.status: list[ArmsStatus] = []
        self.chunks: list[ActionChunk] = []
        self.diags: list[DiagnosticStatus] = []
        self.mode = node.create_client(SET_MODE_SERVICE, SetControlModeRequest)
        self.clients = {"start": node.create_client(START_SERVICE, StartPolicyRequest),
                        "stop": node.create_client(STOP_SERVICE, StopRequest),
                        "pause": node.create_client(PAUSE_SERVICE, StopRequest),
                        "instruction": node.create_client(INSTRUCTION_SERVICE, SetInstructionRequest)}
        node.create_subscription(TARGET_TOPIC, RigTarget, self._rec(self.targets, stamped=True), QoS.reliable(100))
        node.create_subscription(STATE_TOPIC, RigState, self._rec(self.states), QoS.sensor())
        node.create_subscription(STATUS_TOPIC, ArmsStatus, self._rec(self.status), QoS.latched_state())
        node.create_subscription(CHUNK_TOPIC, ActionChunk, self._rec(self.chunks), QoS.reliable(20))
        node.create_subscription("/diagnostics", DiagnosticStatus, self._on_diag, QoS.reliable(50))

    def _rec(self, into: list, stamped: bool = False) -> Callable[[Any], None]:
        def cb(msg: Any) -> None:
            with self.lock:
                into.append((self.node.clock.now(), msg) if stamped else msg)
        return cb

    def _on_diag(self, d: DiagnosticStatus) -> None:
        if d.name.endswith("policy_node"):
            with self.lock:
                self.diags.append(d)

    def now(self) -> float:
        return self.node.clock.now()

    def snapshot(self, what: str) -> list:
        with self.lock:
            return list(getattr(self, what))

    def positions(self, since: float = -np.inf, until: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """(stamps, (n, 2, 3) TCP positions) measured by the arm node in [since, until]."""
        states = [s for s in self.snapshot("states") if since <= s.stamp <= until]
        return (np.array([s.stamp for s in states]),
                np.array([[s.left.tcp_pose.position, s.right.tcp_pose.position] for s in states]).reshape(-1, 2, 3))

    def call(self, service: str, request: Any) -> Any:
        """Call one of the policy node's services (start, stop, pause, instruction) and wait."""
        return self.clients[service].call(request, timeout=10.0)

    def take_arms(self, mode: ControlMode = ControlMode.HOLD, requester: str = "operator") -> Any:
        return self.mode.call(SetControlModeRequest(mode, requester=requester, override=True), timeout=10.0)


@dataclass
class Stack:
    host: Host
    policy: PolicyNode
    probe: Probe
    relay: Relay | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def wait(self, cond: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what or cond}; policy "
                             f"{self.policy.state.value}: {self.policy.diagnostics()}")

    def sim_sleep(self, seconds: float, timeout: float = 60.0) -> None:
        """Wait ``seconds`` of the stack's (sim) clock."""
        end = self.probe.now() + seconds
        self.wait(lambda: self.probe.now() >= end, timeout, f"{seconds} s of sim time")


def start_stack(checkpoint: Path, policy: dict[str, Any] | None = None, relay: bool = False,
                task: str = "pick_cube", model: Callable[[tuple], Any] | None = None,
                arm_remaps: dict[str, str] | None = None) -> Stack:
    """Build and start the stack; ``model`` (e.g. a ``PathModel``) takes the inference worker's place."""
    world = f"policy_test_{next(_WORLDS)}"
    host = Host(diagnostics_period=0.25)
    host.add(NodeSpec(SimNode, "sim_node", params={
        "use_sim_time": True, "world_name": world, "task": task, "realtime_factor": 1.0,
        "max_width": CAMERA["width"], "max_height": CAMERA["height"]}))
    host.add(NodeSpec(CameraComponent, "camera_node", params={
        "use_sim_time": True, "driver": "sim", "sim.world_name": world, "fps": 30.0, **CAMERA}))
    host.add(NodeSpec(ArmNode, "arm_node", params={
        "use_sim_time": True, "backend": "sim", "sim.world_name": world}, remaps=arm_remaps or {}))
    rel = host.add(NodeSpec(Relay, "relay", params={"use_sim_time": True})) if relay else None
    pol = host.add(NodeSpec(PolicyNode, "policy_node", params={
        "use_sim_time": True, "checkpoint": str(checkpoint), "instruction": INSTRUCTION, "steps": 1,
        "threads": 1, "autostart": True, "publish_frames": False,
        **({"camera_prefix": "/relay"} if relay else {}), **(policy or {})}))
    probe = host.add(NodeSpec(Probe, "probe", params={"use_sim_time": True}))
    if model is not None:
        pol.worker._predict = model  # noqa: SLF001 - the seam this test support exists for
    host.start()
    return Stack(host, pol, probe, rel)


class PathModel:
    """A scripted policy in the inference worker's place: the TCPs follow a smooth loop around the
    pose where the run began (``amplitude`` m, ``cycle`` s), offset by a different ``offset`` m per
    chunk, the way samples of a multimodal policy differ. Given a prefix it continues it and relaxes
    onto its own path over ``tau`` steps (what a prefix-trained model does). ``fault`` replaces the
    answer from chunk ``fault_at`` on: "nan", "raise" or "slow" (sleeps ``slow_s`` wall seconds)."""

    def __init__(self, amplitude: float = 0.03, cycle: float = 4.0, offset: float = 0.01, tau: float = 8.0,
                 fault: str = "", fault_at: int = 3, slow_s: float = 3.0, seed: int = 0) -> None:
        self.amplitude, self.cycle, self.offset, self.tau = amplitude, cycle, offset, tau
        self.fault, self.fault_at, self.slow_s = fault, fault_at, slow_s
        self.delay = 0.0  # wall seconds every answer takes (the benchmark's injected inference delay)
        self.rng = np.random.default_rng(seed)
        self.home: np.ndarray | None = None
        self.t0 = 0.0
        self.calls = 0
        self.instructions: list[str] = []

    def target(self, t: np.ndarray) -> np.ndarray:
        """(n, 2, 8) absolute targets at times ``t`` on the loop (grippers open)."""
        w = 2 * np.pi / self.cycle
        s = np.asarray(t) - self.t0
        out = np.repeat(self.home[None], len(s), axis=0)
        for a, sign in ((0, 1.0), (1, -1.0)):
            out[:, a, 0] += self.amplitude * np.sin(w * s)
            out[:, a, 1] += sign * self.amplitude * (1 - np.cos(w * s))
        out[:, :, 7] = 1.0
        return out

    def __call__(self, payload: tuple) -> SimpleNamespace:
        obs, instruction, prefix, _seed = payload
        t_start = time.perf_counter()
        self.calls += 1
        self.instructions.append(instruction)
        if self.fault and self.calls > self.fault_at:
            if self.fault == "raise":
                raise RuntimeError("scripted inference failure")
            if self.fault == "slow":
                time.sleep(self.slow_s)
        measured = np.zeros((2, 8))
        for a in range(2):
            measured[a, :3], measured[a, 3:7] = obs.measured[a].position, obs.measured[a].quaternion
        measured[:, 7] = 1.0
        if self.home is None:
            self.home, self.t0 = measured.copy(), obs.stamp
        k = np.arange(1, 61)
        want = self.target(obs.stamp + k * PERIOD)
        v = self.rng.normal(size=(2, 3))
        want[:, :, :3] += self.offset * v / np.linalg.norm(v, axis=1, keepdims=True)
        if prefix is not None and len(prefix):
            d = len(prefix)
            committed = decode_dual(obs.measured, prefix)
            err = committed[-1, :, :3] - want[d - 1, :, :3]
            want[d:, :, :3] += np.exp(-(k[d:] - d) / self.tau)[:, None, None] * err
            want[:d] = committed
        actions = encode_dual(np.concatenate([measured[None], want])).astype(np.float32)
        if self.fault == "nan" and self.calls > self.fault_at:
            actions[5:, 0] = np.nan
        if self.delay:
            time.sleep(max(0.0, self.delay - (time.perf_counter() - t_start)))
        return SimpleNamespace(actions=actions, reference_stamp=obs.stamp, view_ids=(0, 1, 2),
                               frame_stamps=obs.stamp + np.arange(1, 21) / 10.0, video_latents=None)


def switch_jump(stack: Stack) -> float:
    """Largest second difference of the policy's targets once its second chunk is in (m): the path's
    own motion is a fraction of a millimetre per step, a switch between two chunks that disagree is not."""
    chunks = stack.probe.snapshot("chunks")
    if len(chunks) < 2:
        return float("nan")
    start = chunks[1].obs_stamp + 0.2
    x = np.array([[m.left.tcp_pose.position, m.right.tcp_pose.position] for _, m in stack.probe.snapshot("targets")
                  if m.requester == "policy_node" and m.stamp > start]).reshape(-1, 2, 3)
    if len(x) < 3:
        return float("nan")
    return float(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).max())
