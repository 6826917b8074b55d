"""The teleop node: the page in ``teleop/`` (a WebXR headset, or its desktop fallback) drives both
arms through the arm node, and its episode buttons drive the recorder (issue 19).

It serves the page and its WebSocket (``server``), checks and maps every message (``session``:
clutch per arm, alignment, scale, dead man, bad input dropped and counted) and publishes timed
``RigTarget``s on /arms/target the moment a pose message is applied, stamped ``now + lead``; a
timer at ``rate`` re-sends the held targets between messages, runs the dead man and sends the page
its state. The arm node's limits (speed, acceleration, workspace, watchdog) stay in force.

Ownership: when a page connects, the node asks the arm node for the teleop mode as its node name
and starts from the measured TCP poses; when the page closes (or its socket is lost) it asks for
hold, which frees the arms. Losing the teleop mode (an operator override, a fault) releases both
clutches; the page shows why.

Episodes: the page's start / save / discard / re-record buttons become ``EpisodeEvent``s on
/episode/events (re-record: discard, then start with the same instruction); the recorder's outcomes
on /record/episodes come back to the page (recording, saved episodes) with a haptic pulse on start
and on save.

The dead man and the rate limit run on the wall clock (``time.perf_counter``): they watch the
operator's link, whatever the node's clock (sim time) does.
"""

from __future__ import annotations

import json
import math
import secrets
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2w.arms.component import SET_MODE_SERVICE, STATE_TOPIC, TARGET_TOPIC
from a2w.arms.kinematics import TRI_BASE_POSES
from a2w.geometry import matrix_to_pose, pose_to_matrix, xyz_rpy_to_matrix
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param, specs
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.msgs.episode import EpisodeEvent, EpisodeEventKind
from a2w.msgs.services import SetControlModeRequest
from a2w.msgs.sim import TaskFacts
from a2w.record.component import EVENTS_TOPIC, OUTCOME_TOPIC
from a2w.teleop.server import TeleopServer, ensure_certificate
from a2w.teleop.session import ARMS, PROTOCOL, EpisodeMessage, PoseMessage, TeleopConfig, TeleopSession

TASK_TOPIC = "/sim/task"  # a2w.sim.component.TASK_TOPIC; importing it would load MuJoCo on a rig
WWW = Path(__file__).resolve().parents[5] / "teleop"  # the repository's teleop/ (editable install)
DEFAULT_INSTRUCTIONS = ["pick up the cube", "lift the box with both arms"]  # a2w.sim.collect.INSTRUCTIONS


@dataclass
class TeleopNodeParams(Params):
    bind: str = param("127.0.0.1", "address the page is served on (0.0.0.0 or the LAN address for a headset)")
    port: int = param(8765, "port of the page and its WebSocket (0 = any free port)", low=0, high=65535)
    https: bool = param(False, "serve over HTTPS with a self-signed certificate (a headset needs it for WebXR)")
    cert_dir: str = param("", "where the certificate is made and kept ('' = ~/.cache/a2w/teleop)")
    token: str = param("", "pairing token the page must present ('' = a new random one per start)")
    www: str = param("", "directory of the page ('' = the repository's teleop/)")
    yaw: float = param(0.0, "operator frame -> world: where the operator faces, about z (deg)", low=-360.0,
                       high=360.0)
    scale: float = param(1.0, "hand motion -> TCP motion (position only)", low=0.05, high=10.0)
    max_jump: float = param(0.25, "a controller moving more than this between two messages is dropped (m)",
                            low=0.01, high=10.0)
    deadman: float = param(0.1, "page silence that releases the engaged arms (s)", low=0.01, high=5.0)
    max_rate: float = param(250.0, "messages per second beyond which they are dropped", low=1.0, high=10000.0)
    rate: float = param(50.0, "control tick: re-send held targets, dead man, page state (Hz)", low=5.0, high=500.0)
    lead: float = param(0.05, "targets are stamped this far ahead of now (s)", low=0.0, high=0.5)
    state_rate: float = param(10.0, "state messages to the page (Hz)", low=0.5, high=60.0)
    instructions: list[str] = param(list(DEFAULT_INSTRUCTIONS), "instructions the page offers for an episode")
    left_base_pose: list[float] = param(list(TRI_BASE_POSES["left"]), "left base in world [x y z r p y] "
                                        "(replaced by the sim's /sim/task facts when they come)")
    right_base_pose: list[float] = param(list(TRI_BASE_POSES["right"]), "right base in world [x y z r p y]")
    calibration: str = param("", "calibration folder (calibration/<rig>/): the base poses from its bases.yaml and "
                             "the yaw from its vr.yaml ('' = the parameters); a base pose or yaw parameter set to "
                             "another value than the calibration's is refused, as in the arm node")
    qr: bool = param(True, "print the page's address as a QR code in the terminal too (when not on loopback)")
    run_for: float = param(0.0, "end the session (the host stops, exit 0) after this long on the node's clock (s); "
                                "0 = until stopped", low=0.0)


def _base(values: list[float], name: str) -> np.ndarray:
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name}: [x, y, z, roll, pitch, yaw] expected, got {values}")
    return xyz_rpy_to_matrix(values[:3], values[3:])


def _calibrated(p: "TeleopNodeParams", poses: dict[str, list[float]]) -> tuple[dict[str, list[float]], float]:
    """Base poses and yaw from the calibration folder (``a2w.rig.extrinsics``'s rule: a parameter left at
    its default takes the calibrated value, one set otherwise must agree with it)."""
    from a2w.rig.extrinsics import load_extrinsics, resolve_pose

    ext = load_extrinsics(p.calibration)
    defaults = {s.name: s.default for s in specs(TeleopNodeParams)}
    poses = {a: resolve_pose(f"{a}_base_pose", poses[a], defaults[f"{a}_base_pose"], ext.bases[a],
                             f"{p.calibration}/bases.yaml {a}") for a in ("left", "right")}
    yaw = p.yaw
    if yaw == defaults["yaw"]:
        yaw = ext.vr_yaw_deg
    elif abs(yaw - ext.vr_yaw_deg) > 1e-6:
        raise ValueError(f"yaw {yaw} conflicts with {p.calibration}/vr.yaml ({ext.vr_yaw_deg} deg): leave yaw "
                         "unset, or set calibration to '' to use the parameter")
    return poses, yaw


class TeleopNode(Component):
    Params = TeleopNodeParams

    def __init__(self, node: NodeHandle, params: TeleopNodeParams) -> None:
        super().__init__(node, params)
        p = params
        poses, yaw = {"left": p.left_base_pose, "right": p.right_base_pose}, p.yaw
        if p.calibration:
            poses, yaw = _calibrated(p, poses)
        bases = (_base(poses["left"], "left_base_pose"), _base(poses["right"], "right_base_pose"))
        self.session = TeleopSession(TeleopConfig(math.radians(yaw), p.scale, p.max_jump, p.deadman, p.max_rate,
                                                  max(10.0, p.max_rate / 5)), bases)
        self.state: RigState | None = None
        self.owned = False
        self.acquiring = False
        self.connected = False
        self.refusal = ""  # why the arm node refused or took back the arms
        self.recording = False
        self.episode = -1
        self.episodes_saved = 0
        self.task = p.instructions[0] if p.instructions else ""
        self.last_outcome = ""
        self.targets_sent = 0
        self.deadman_releases = 0
        self.latencies: deque[float] = deque(maxlen=2000)  # message received -> target published (s)
        self._published_tick = False
        self._ticks = 0
        self._last_error_sent = 0.0

        self._pub = node.create_publisher(TARGET_TOPIC, RigTarget, QoS.reliable(10))
        self._events = node.create_publisher(EVENTS_TOPIC, EpisodeEvent, QoS.reliable(20))
        self._mode = node.create_client(SET_MODE_SERVICE, SetControlModeRequest)
        node.create_subscription(STATE_TOPIC, RigState, self._on_state, QoS.sensor())
        node.create_subscription(TASK_TOPIC, TaskFacts, self._on_facts, QoS.latched_state())
        node.create_subscription(OUTCOME_TOPIC, EpisodeEvent, self._on_outcome, QoS.reliable(20))

        www = Path(p.www).expanduser() if p.www else WWW
        if not (www / "index.html").is_file():
            raise ValueError(f"www: no index.html in {www} (the teleop page)")
        tls = None
        if p.https:
            cert_dir = Path(p.cert_dir).expanduser() if p.cert_dir else Path.home() / ".cache" / "a2w" / "teleop"
            tls = ensure_certificate(cert_dir, [p.bind] if p.bind not in ("0.0.0.0", "::") else [])
        token = p.token or secrets.token_urlsafe(9)
        self.server = TeleopServer(www, p.bind, p.port, token, tls,
                                   on_connect=lambda: node.post(self._on_connect),
                                   on_message=self._on_wire,
                                   on_close=lambda why: node.post(lambda: self._on_close(why)))
        node.start_worker("server", lambda: self.server.run(node.shutdown_event))
        if not self.server.ready.wait(15.0) or self.server.error is not None:
            raise RuntimeError(f"teleop: cannot serve on {p.bind}:{p.port}: {self.server.error or 'timed out'}")
        self.url = self.server.url("localhost" if p.bind in ("127.0.0.1", "::1") else None)
        self._announce()
        self._started = node.clock.now()
        self._over = False
        node.create_timer(1.0 / p.rate, self._tick)

    def _announce(self) -> None:
        lines = [f"teleop page: {self.url}"]
        if self.params.bind in ("0.0.0.0", "::"):
            lines.append("(listening on every interface: open it with this machine's LAN address)")
        if self.params.qr and self.params.bind not in ("127.0.0.1", "::1", "localhost"):  # for a headset
            try:
                import io

                import segno

                buf = io.StringIO()
                segno.make(self.url, error="l").terminal(out=buf, compact=True)
                lines.append(buf.getvalue())
            except ImportError:
                pass  # the address alone does; segno is a convenience (requirements/dev.txt)
        # the operator's way in, whatever the log level: on the terminal as a server's "listening on" is
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
        self.log.info("teleop page: %s", self.url)

    # -- arms -------------------------------------------------------------------------------------
    def _on_state(self, state: RigState) -> None:
        self.state = state
        if self.owned and state.mode is not ControlMode.TELEOP and state.stamp > self._granted_at:
            self.owned = False
            self.refusal = f"the arm node left teleop mode (now {state.mode.value})"
            self.session.release_all(self.refusal)
            self.log.warning("teleop: %s", self.refusal)

    def _on_facts(self, facts: TaskFacts) -> None:
        self.session.set_bases(tuple(pose_to_matrix(b) for b in facts.arm_bases))

    def _acquire(self) -> None:
        if self.owned or self.acquiring:
            return
        if self.state is None:
            self.refusal = f"waiting for {STATE_TOPIC} (is the arm node running?)"
            return
        if not self._mode.ready():
            self.refusal = f"waiting for the service {SET_MODE_SERVICE}"
            return
        self.acquiring = True
        fut = self._mode.call_async(SetControlModeRequest(ControlMode.TELEOP, requester=self.node.name))
        fut.add_done_callback(lambda f: self.node.post(lambda: self._on_mode(f)))

    def _on_mode(self, fut: Any) -> None:
        self.acquiring = False
        exc = fut.exception()
        resp = None if exc else fut.result()
        if exc or not resp.success:
            self.refusal = f"the arm node refused the teleop mode: {exc or resp.message}"
            self.log.error("teleop: %s", self.refusal)
            return
        if not self.connected:  # the page left while we asked
            self._release("page closed")
            return
        st = self.state
        self.session.reset(tuple(self.session.arms[a].base @ pose_to_matrix(st.arm(a).tcp_pose) for a in range(2)),
                           (st.left.gripper_open, st.right.gripper_open))
        self.owned, self.refusal = True, ""
        self._granted_at = self.node.clock.now()
        self.log.info("teleop: the arms are ours; hold the grip to engage an arm")

    _granted_at = math.inf

    def _release(self, why: str) -> None:
        self.session.release_all(why)
        self.owned = False
        fut = self._mode.call_async(SetControlModeRequest(ControlMode.HOLD, requester=self.node.name))
        fut.add_done_callback(lambda f: f.exception())  # at shutdown the arm node may be gone: it stops itself

    def _publish(self) -> None:
        (lt, lg), (rt, rg) = self.session.targets_base()
        arms = (ArmTarget(matrix_to_pose(lt), float(np.clip(lg, 0, 1))),
                ArmTarget(matrix_to_pose(rt), float(np.clip(rg, 0, 1))))
        self._pub.publish(RigTarget(arms[0], arms[1], self.node.clock.now() + self.params.lead, ControlMode.TELEOP,
                                    self.node.name))
        self.targets_sent += 1
        self._published_tick = True

    # -- the page ---------------------------------------------------------------------------------
    def _on_wire(self, raw: str | bytes, t_recv: float) -> None:
        """On the server thread: hand the message to the executor with its arrival time."""
        self.node.post(lambda: self._on_message(raw, t_recv))

    def _on_connect(self) -> None:
        self.connected = True
        self.log.info("teleop: a page connected")
        self._acquire()
        self._send_state()

    def _on_close(self, why: str) -> None:
        self.connected = False
        self.log.info("teleop: %s; holding the arms", why)
        if self.owned:
            self._release(why)

    def _on_message(self, raw: str | bytes, t_recv: float) -> None:
        msg = self.session.receive(raw, t_recv)
        for r in self.session.releases:
            self.log.info("teleop: %s arm released: %s", ARMS[r.arm], r.why)
        self.session.releases.clear()
        if msg is None:
            now = time.perf_counter()
            if now - self._last_error_sent > 0.2:  # a flood must not be answered by a flood
                self._last_error_sent = now
                self.server.send(json.dumps({"type": "error", "why": self.session.last_error,
                                             "dropped": self.session.dropped}))
            return
        if isinstance(msg, PoseMessage):
            if not self.owned:
                self._acquire()
                return
            self._publish()
            self.latencies.append(time.perf_counter() - t_recv)
        elif isinstance(msg, EpisodeMessage):
            self._episode(msg)

    def _episode(self, msg: EpisodeMessage) -> None:
        task = msg.task or self.task
        now = self.node.clock.now()
        if msg.action in ("start", "rerecord"):
            if not task.strip():
                self.session.last_error = "an episode needs an instruction"
                return
            self.task = task
        if msg.action == "rerecord":
            self._events.publish(EpisodeEvent(EpisodeEventKind.DISCARD, now, task=self.task, note="re-record"))
            self._events.publish(EpisodeEvent(EpisodeEventKind.START, now, task=self.task, note="re-record"))
        else:
            kind = {"start": EpisodeEventKind.START, "save": EpisodeEventKind.SAVE,
                    "discard": EpisodeEventKind.DISCARD}[msg.action]
            self._events.publish(EpisodeEvent(kind, now, task=self.task, note="teleop page"))
        self.log.info("teleop: episode %s (%r)", msg.action, self.task)

    def _on_outcome(self, ev: EpisodeEvent) -> None:
        self.last_outcome = f"{ev.kind.value} episode {ev.episode_index}: {ev.note}"
        if ev.kind is EpisodeEventKind.START:
            self.recording, self.episode = True, ev.episode_index
            self.server.send(json.dumps({"type": "haptic", "arm": "both", "intensity": 0.6, "ms": 80}))
        elif ev.kind is EpisodeEventKind.SAVE:
            self.recording = False
            self.episodes_saved += 1
            self.server.send(json.dumps({"type": "haptic", "arm": "both", "intensity": 1.0, "ms": 200}))
        elif ev.kind is EpisodeEventKind.DISCARD:
            self.recording = False
        self._send_state()

    def page_state(self) -> dict[str, Any]:
        s = self.session
        return {"type": "state", "v": PROTOCOL, "owned": self.owned, "engaged": dict(zip(ARMS, s.engaged())),
                "mode": self.state.mode.value if self.state else "", "recording": self.recording,
                "episode": self.episode, "episodes_saved": self.episodes_saved, "task": self.task,
                "instructions": list(self.params.instructions), "last_outcome": self.last_outcome,
                "last_error": s.last_error or self.refusal, "dropped": s.dropped, "accepted": s.accepted}

    def _send_state(self) -> None:
        self.server.send(json.dumps(self.page_state()))

    # -- timer ------------------------------------------------------------------------------------
    def _tick(self) -> None:
        self._ticks += 1
        if self.params.run_for and not self._over and self.node.clock.now() - self._started >= self.params.run_for:
            self._over = True
            if self.owned:
                self._release("session over")
            self.node.request_shutdown(f"teleop session over after {self.params.run_for:g} s", exit_code=0)
        if self.session.check_deadman(time.perf_counter()):
            self.deadman_releases += 1
            self.log.warning("teleop: %s; holding", self.session.releases[-1].why)
            self.session.releases.clear()
            self._send_state()
        if self.owned and not self._published_tick and self.session.ready:
            self._publish()  # keep the held targets fresh for the arm node's watchdog
        self._published_tick = False
        if self.connected and self._ticks % max(1, round(self.params.rate / self.params.state_rate)) == 0:
            self._send_state()

    # -- reporting --------------------------------------------------------------------------------
    def health(self) -> tuple[DiagnosticLevel, str] | None:
        if self.connected and not self.owned and self.refusal:
            return DiagnosticLevel.WARN, self.refusal
        return None

    def diagnostics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "connected": self.connected, "owned": self.owned,
                               "engaged": "".join(a[0] for a, e in zip(ARMS, self.session.engaged()) if e) or "-",
                               "accepted": self.session.accepted, "targets_sent": self.targets_sent,
                               "deadman_releases": self.deadman_releases,
                               "refused_token": self.server.refused["token"], "recording": self.recording}
        out.update({f"dropped {k}": v for k, v in self.session.dropped.items() if v})
        if self.latencies:
            lat = np.asarray(self.latencies) * 1e3
            out.update(latency_p50_ms=round(float(np.percentile(lat, 50)), 3),
                       latency_p95_ms=round(float(np.percentile(lat, 95)), 3))
        return out

    def shutdown(self) -> None:
        if self.owned:
            self._release("shut down")
