"""The policy node: A2World-policy closes the loop through the arm node, asynchronously, with
training-time real-time chunking (issue 16; docs/architecture.md §6).

Thin wiring over the ROS-free pieces in this package:

* ``inputs``: the three views paired by stamp (spread limit) and resized, plus the TCP poses
  measured at the observation's time;
* ``worker``: ``PolicyEngine.predict`` on a worker thread, so the executor keeps its rate;
* ``scheduler`` and ``queue``: when to request, the RTC prefix, how a chunk joins the committed
  actions, and the 30 Hz executor step that drops stale actions and never replays one.

The executor works on the execution timeline ``t = now + lead``: each target is sent one ``lead``
before its execution time and stamped with that time, so the arm node interpolates to reach it
then. The node moves the arms only while it owns them (``/arms/set_mode`` policy, as its node
name); it hands them back held on stop and on every fault.

Safety (issue 16 item 6): a chunk that is not finite, an inference error or timeout, losing the
policy mode, or an arm fault ends in a **fault**: the node asks the arm node to hold (which
decelerates and holds the measured pose), stops sending, and reports the reason on /diagnostics
(level ERROR) until ``/policy/start`` clears it. Cameras that go stale or drift apart only stop
new requests: the committed actions finish, then the node holds the last target (level WARN) and
resumes by itself when a usable observation returns. A missing instruction or a checkpoint that
does not fit (tokenizer, text cache, views, image size) is an error at start naming the file.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2w.actions import compose_chunk, rig_pose
from a2w.arms.component import SET_MODE_SERVICE, STATE_TOPIC, STATUS_TOPIC, TARGET_TOPIC
from a2w.clock import PeriodStats
from a2w.frames import optical_frame
from a2w.host.component import Component, NodeHandle
from a2w.host.params import Params, param
from a2w.host.qos import QoS
from a2w.msgs.arms import ArmsStatus, ArmTarget, ControlMode, RigState, RigTarget
from a2w.msgs.cameras import VIEW_NAMES, CameraFrame
from a2w.msgs.common import Pose
from a2w.msgs.diagnostics import DiagnosticLevel
from a2w.msgs.policy import ActionChunk
from a2w.msgs.services import (
    Outcome,
    SetControlModeRequest,
    SetInstructionRequest,
    StartPolicyRequest,
    StopRequest,
)
from a2w.policy.inputs import Observation, PolicyInputs, Refusal
from a2w.policy.queue import ActionQueue
from a2w.policy.scheduler import ChunkRequest, ChunkScheduler, DelayWindow, Mode
from a2w.policy.topics import (
    CHUNK_TOPIC,
    INSTRUCTION_SERVICE,
    PAUSE_SERVICE,
    START_SERVICE,
    STOP_SERVICE,
    predicted_topic,
)
from a2w.policy.worker import InferenceDone, InferenceJob, InferenceWorker

RELEASE_IMAGE_SIZE = (256, 256)  # the engine's default input (a2world_release_facts.md §3.4)


class State(str, enum.Enum):
    IDLE = "idle"  # loaded; not driving the arms
    STARTING = "starting"  # waiting for the arm state and the cameras before taking the arms
    ACQUIRING = "acquiring"  # asked the arm node for the policy mode
    RUNNING = "running"
    PAUSED = "paused"  # owns the arms, holds them still, requests nothing
    FAULT = "fault"  # handed the arms back held; /policy/start clears it


@dataclass
class PolicyNodeParams(Params):
    checkpoint: str = param("", "policy checkpoint directory (a2world.policy.bundle: model, tokenizer, text cache)")
    tokenizer: str = param("", "tokenizer file ('' = <checkpoint>/tokenizer.safetensors)")
    text_embeddings: str = param("", "text-embedding cache ('' = <checkpoint>/text_embeddings.safetensors)")
    instruction: str = param("", "instruction to run ('' = the checkpoint's default in runtime.json)")
    autostart: bool = param(False, "take the arms and run at start-up (else wait for /policy/start)")
    backend: str = param("torch", "inference backend", choices=("torch", "onnx"))
    device: str = param("cpu", "torch device: cpu, cuda, cuda:1 ...")
    dtype: str = param("float32", "network dtype", choices=("float32", "bfloat16"))
    steps: int = param(35, "sampling steps per chunk (the release uses 35)", low=1, high=1000)
    guidance_video: float = param(1.0, "video guidance scale (1 = conditional only)", low=0.0, high=50.0)
    guidance_action: float = param(1.0, "action guidance scale (1 = conditional only)", low=0.0, high=50.0)
    seed: int = param(0, "sampling seed; chunk k uses seed + k", low=0)
    views: list[str] = param(list(VIEW_NAMES), "camera views the model sees (release ids: left_wrist 0, "
                                               "right_wrist 1, front 2)")
    image_size: list[int] = param([], "model input [H, W]; [] = the checkpoint's runtime.json, else 256x256")
    horizon: int = param(0, "actions executed per chunk (0 = the model's whole chunk)", low=0, high=10000)
    mode: str = param("rtc", "execution: sync (robot waits), naive (async switch), rtc (async, action "
                             "prefix), blend (async, soft-mask blend)", choices=tuple(m.value for m in Mode))
    max_prefix: int = param(-1, "longest RTC prefix in steps (-1 = the model's max_prefix)", low=-1, high=10000)
    margin: float = param(0.1, "request when the committed actions last less than p95 delay + this (s)",
                          low=0.0, high=10.0)
    initial_delay: float = param(1.0, "inference delay assumed until one is measured (s)", low=0.0, high=60.0)
    lead: float = param(1.0 / 30.0, "send each target this long before its execution time (s)", low=0.0, high=0.5)
    inference_timeout: float = param(10.0, "an inference that takes longer is a fault (s)", low=0.05, high=600.0)
    camera_timeout: float = param(0.25, "the paired views must be at most this old (s)", low=0.01, high=10.0)
    max_spread: float = param(0.016, "largest spread of the paired view stamps (s)", low=0.0, high=1.0)
    camera_prefix: str = param("/cameras", "camera topics are <prefix>/<view>/color/image_raw")
    publish_frames: bool = param(True, "decode the predicted video and publish it per view (on a second worker, "
                                       "after the actions; a chunk whose decode would queue is skipped)")
    threads: int = param(0, "torch threads (0 = torch's default; process-wide). On a small CPU shared with other "
                            "nodes 1 is fastest: spinning threads slow every other process", low=0, high=256)


def _rig_target(pose_array: np.ndarray, stamp: float, requester: str) -> RigTarget:
    arms = [ArmTarget(Pose(pose_array[a, :3], pose_array[a, 3:7]), float(np.clip(pose_array[a, 7], 0.0, 1.0)))
            for a in range(2)]
    return RigTarget(arms[0], arms[1], stamp, ControlMode.POLICY, requester)


class PolicyNode(Component):
    Params = PolicyNodeParams

    def __init__(self, node: NodeHandle, params: PolicyNodeParams) -> None:
        super().__init__(node, params)
        self.clock = node.clock
        self.engine, self.instruction, image_size = self._load(params)
        pc = self.engine.policy.config
        self.period = 1.0 / float(pc.action_rate_hz)
        horizon = params.horizon or pc.action_horizon
        if horizon > pc.action_horizon:
            raise ValueError(f"horizon: {horizon} actions, but the model's chunk has {pc.action_horizon}")
        mode = Mode(params.mode)
        max_prefix = pc.max_prefix if params.max_prefix < 0 else params.max_prefix
        if max_prefix > pc.max_prefix:
            raise ValueError(f"max_prefix: {max_prefix}, but the checkpoint was trained with prefixes up to "
                             f"{pc.max_prefix}")
        if mode is Mode.RTC and max_prefix == 0:
            self.log.warning("the checkpoint takes no action prefix (max_prefix 0): blending chunks instead of RTC")
            mode = Mode.BLEND
        self.queue = ActionQueue(self.period)
        self.scheduler = ChunkScheduler(self.queue, mode, horizon, params.margin, min(max_prefix, horizon - 1),
                                        DelayWindow(initial=params.initial_delay))
        self.horizon = horizon
        self.inputs = PolicyInputs(params.views, image_size, params.max_spread, params.camera_timeout)

        self.state = State.IDLE
        self.fault = ""  # why the node holds (FAULT) or waits (RUNNING without a usable observation)
        self.waiting = ""
        self._acquired_at: float | None = None  # when the policy mode was granted
        self._hold: np.ndarray | None = None  # (2, 8) target held before the first action and while paused
        self._pending: ChunkRequest | None = None
        self._last_stamp: float | None = None  # of the last target sent
        self.refusals: dict[str, int] = {}
        self.latencies: deque[float] = deque(maxlen=200)  # worker wall time per inference
        self.first_steps: deque[int] = deque(maxlen=200)  # delay in executed steps per accepted chunk
        self.targets_sent = 0
        self.holds_sent = 0
        self.faults = 0
        self.frames_published = 0

        self.target_pub = node.create_publisher(TARGET_TOPIC, RigTarget, QoS.reliable(10))
        self.chunk_pub = node.create_publisher(CHUNK_TOPIC, ActionChunk, QoS.reliable(5))
        self.frame_pubs = {v: node.create_publisher(predicted_topic(v), CameraFrame, QoS.reliable(60))
                           for v in self.inputs.views} if params.publish_frames else {}
        self._mode_client = node.create_client(SET_MODE_SERVICE, SetControlModeRequest)
        node.create_subscription(STATE_TOPIC, RigState, self._on_state, QoS.sensor())
        self.arms_status: ArmsStatus | None = None
        node.create_subscription(STATUS_TOPIC, ArmsStatus, self._on_arms_status, QoS.latched_state())
        prefix = params.camera_prefix.rstrip("/")
        for v in self.inputs.views:
            node.create_subscription(f"{prefix}/{v}/color/image_raw", CameraFrame, self.inputs.add_frame,
                                     QoS.sensor())
        node.create_service(START_SERVICE, StartPolicyRequest, self._on_start)
        node.create_service(STOP_SERVICE, StopRequest, self._on_stop)
        node.create_service(PAUSE_SERVICE, StopRequest, self._on_pause)
        node.create_service(INSTRUCTION_SERVICE, SetInstructionRequest, self._on_instruction)

        self.worker = InferenceWorker(self._predict, lambda done: node.post(lambda: self._on_done(done)),
                                      node.shutdown_event)
        node.start_worker("inference", self.worker.run)
        self.decoder: InferenceWorker | None = None
        if self.frame_pubs:
            self.decoder = InferenceWorker(self._decode,
                                           lambda done: node.post(lambda: self._on_frames(done)), node.shutdown_event)
            node.start_worker("decode", self.decoder.run)
        self.frames_skipped = 0
        self.timer = node.create_timer(self.period, self._tick)
        self.timer_stats: PeriodStats = self.timer.stats
        self.log.info("policy %s: %s, %d actions per chunk at %g Hz, %s execution, prefix up to %d, instruction %r",
                      params.checkpoint, params.backend, horizon, 1.0 / self.period, mode.value,
                      self.scheduler.max_prefix, self.instruction)
        if params.autostart:
            self._start(self.instruction)

    # -- loading ----------------------------------------------------------------------------------
    def _load(self, p: PolicyNodeParams) -> tuple[Any, str, tuple[int, int]]:
        """The engine, the instruction and the input size; errors name the file or the parameter."""
        if not p.checkpoint:
            raise ValueError("checkpoint: a policy checkpoint directory is required (a2w policy init-tiny "
                             "makes a random one for smoke tests)")
        import torch

        from a2world.policy.bundle import load_bundle
        from a2world.policy.diffusion import Guidance
        from a2world.policy.engine import DTYPES, PolicyEngine, PolicyEngineConfig
        from a2world.sampler import SamplerConfig

        bundle = load_bundle(Path(p.checkpoint).expanduser(), tokenizer=p.tokenizer or None,
                             text_embeddings=p.text_embeddings or None, device=p.device, dtype=DTYPES[p.dtype])
        rt = bundle.runtime
        instruction = p.instruction or rt.instruction
        if not instruction:
            raise ValueError(f"instruction: none given and {p.checkpoint} has no default; known: "
                             f"{bundle.text_cache.instructions}")
        if instruction not in bundle.text_cache:
            raise ValueError(f"instruction {instruction!r} is not in the text-embedding cache "
                             f"{bundle.text_cache.path}; known: {bundle.text_cache.instructions}")
        if p.image_size and len(p.image_size) != 2:
            raise ValueError(f"image_size: [H, W] expected, got {p.image_size}")
        size = tuple(p.image_size) if p.image_size else (tuple(rt.image_size) if rt.image_size else RELEASE_IMAGE_SIZE)
        from a2w.msgs.cameras import VIEW_IDS

        view_ids = tuple(VIEW_IDS[v] for v in p.views if v in VIEW_IDS)
        if rt.view_ids and set(view_ids) != set(rt.view_ids):
            raise ValueError(f"views: {list(p.views)} (ids {view_ids}) differ from the views {p.checkpoint} "
                             f"was trained with (ids {rt.view_ids})")
        config = PolicyEngineConfig(
            sampler=SamplerConfig(num_steps=p.steps), guidance=Guidance(p.guidance_video, p.guidance_action),
            seed=p.seed, dtype=p.dtype, device=p.device, backend=p.backend, view_ids=view_ids,
            image_size=(int(size[0]), int(size[1])), decode_video=False,
            max_stamp_spread_s=p.max_spread, max_observation_age_s=p.camera_timeout + p.inference_timeout)
        if p.threads:
            torch.set_num_threads(p.threads)
        engine = PolicyEngine(bundle.policy, bundle.tokenizer, bundle.text_cache, config, clock=self.node.clock.now)
        return engine, instruction, (int(size[0]), int(size[1]))

    # -- inputs -----------------------------------------------------------------------------------
    def _on_state(self, state: RigState) -> None:
        self.inputs.add_state(state)

    def _on_arms_status(self, status: ArmsStatus) -> None:
        self.arms_status = status

    def _predict(self, payload: tuple[Observation, str, np.ndarray | None, int]) -> Any:
        import torch

        from a2world.policy.engine import PolicyObservation

        obs, instruction, prefix, seed = payload
        if self.params.threads and torch.get_num_threads() != self.params.threads:
            torch.set_num_threads(self.params.threads)  # in case the setting is per thread (OpenMP)
        with torch.inference_mode():  # grad mode is per thread: set it on the worker's
            return self.engine.predict(PolicyObservation(obs.images, obs.stamps), instruction, action_prefix=prefix,
                                       seed=seed)

    def _decode(self, out: Any) -> tuple[Any, np.ndarray]:
        import torch

        with torch.inference_mode():
            return out, self.engine.decode_frames(out)

    # -- services ---------------------------------------------------------------------------------
    def _known(self, instruction: str) -> str:
        cache = self.engine.text_cache
        return "" if instruction in cache else (f"instruction {instruction!r} is not in the text-embedding cache; "
                                                f"known: {cache.instructions}")

    def _on_start(self, req: StartPolicyRequest) -> Outcome:
        if err := self._known(req.instruction):
            return Outcome(False, err)
        if self.state in (State.STARTING, State.ACQUIRING):
            self.instruction = req.instruction
            return Outcome(True, f"already starting ({self.state.value})")
        if self.state is State.RUNNING:
            changed = req.instruction != self.instruction
            self.instruction = req.instruction
            return Outcome(True, "running; instruction changed" if changed else "already running")
        if self.state is State.PAUSED:
            self.instruction = req.instruction
            self._set_state(State.RUNNING, "resumed")
            return Outcome(True, "resumed")
        self._start(req.instruction)
        return Outcome(True, f"starting: the arms are taken once their state and the cameras arrive (watch "
                             f"/diagnostics for {self.node.name})")

    def _on_stop(self, req: StopRequest) -> Outcome:
        if self.state in (State.IDLE, State.FAULT):
            return Outcome(True, f"not running ({self.state.value})")
        if self.state is State.STARTING:
            self._set_state(State.IDLE, "stopped before taking the arms")
            return Outcome(True, "stopped before taking the arms")
        self._release(f"stopped: {req.reason}" if req.reason else "stopped")
        self._set_state(State.IDLE, "stopped")
        return Outcome(True, "stopped; the arms are held")

    def _on_pause(self, req: StopRequest) -> Outcome:
        if self.state is not State.RUNNING:
            return Outcome(False, f"cannot pause while {self.state.value}")
        self._hold = self._current_hold()
        self._forget_committed()
        self._set_state(State.PAUSED, f"paused: {req.reason}" if req.reason else "paused")
        return Outcome(True, "paused; holding (resume with /policy/start)")

    def _on_instruction(self, req: SetInstructionRequest) -> Outcome:
        if err := self._known(req.instruction):
            return Outcome(False, err)
        self.instruction = req.instruction
        self.log.info("instruction: %r", req.instruction)
        return Outcome(True, "the next chunk uses the new instruction")

    # -- ownership --------------------------------------------------------------------------------
    def _start(self, instruction: str) -> None:
        self.instruction = instruction
        self.fault = ""
        self._forget_committed()
        self._hold = None
        self._acquired_at = None
        self._last_stamp = None
        self._set_state(State.STARTING, f"starting with instruction {instruction!r}")

    def _ready(self, now: float) -> str:
        """What the node still waits for before it takes the arms ('' when ready)."""
        state = self.inputs.latest_state
        if state is None or now - state.stamp > self.params.camera_timeout:
            return f"waiting for {STATE_TOPIC} (is the arm node running?)"
        if not self._mode_client.ready():
            return f"waiting for the service {SET_MODE_SERVICE}"
        paired = self.inputs.pairer.pair(target=now)
        if not paired.ok:
            return f"waiting for the cameras ({self.params.camera_prefix}/<view>/color/image_raw): {paired.detail}"
        return ""

    def _acquire(self) -> None:
        self._set_state(State.ACQUIRING, "asking the arm node for the policy mode")
        fut = self._mode_client.call_async(SetControlModeRequest(ControlMode.POLICY, requester=self.node.name))
        fut.add_done_callback(lambda f: self.node.post(lambda: self._on_mode(f)))

    def _on_mode(self, fut: Any) -> None:
        if self.state is not State.ACQUIRING:
            return  # stopped meanwhile: _on_stop already asked for hold
        exc = fut.exception()
        resp = None if exc else fut.result()
        if exc or not resp.success:
            self._fail(f"the arm node refused the policy mode: {exc or resp.message}", release=False)
            return
        self._acquired_at = self.clock.now()
        state = self.inputs.latest_state
        self._hold = rig_pose(state) if state is not None else None
        self._set_state(State.RUNNING, "running")

    def _release(self, reason: str) -> None:
        """Ask the arm node to hold (which frees the arms); never waits."""
        self._forget_committed()
        fut = self._mode_client.call_async(SetControlModeRequest(ControlMode.HOLD, requester=self.node.name))
        fut.add_done_callback(lambda f: self.node.post(lambda: self._on_released(f, reason)))

    def _on_released(self, fut: Any, reason: str) -> None:
        exc = fut.exception()
        if exc or not fut.result().success:
            # At shutdown the arm node may be gone already; its own shutdown stops the arms.
            (self.log.warning if reason == "shut down" else self.log.error)(
                "asking the arm node to hold after %r failed: %s", reason, exc or fut.result().message)

    def _fail(self, reason: str, release: bool = True) -> None:
        self.faults += 1
        self.fault = reason
        self.log.error("policy fault, holding the arms: %s", reason)
        if release and self.state in (State.RUNNING, State.PAUSED):
            self._release(reason)
        self._forget_committed()
        self._set_state(State.FAULT, reason)

    def _ownership_problem(self) -> str:
        """Why the node may no longer command ('' while it owns the arms in policy mode)."""
        state = self.inputs.latest_state
        if state is None or self._acquired_at is None or state.stamp <= self._acquired_at:
            return ""  # no state since the grant yet
        if state.mode is not ControlMode.POLICY:
            return f"lost the policy mode: the arm node is in {state.mode.value}"
        faults = [f"{name}: {getattr(state, name).fault}" for name in ("left", "right") if getattr(state, name).fault]
        return f"arm fault: {'; '.join(faults)}" if faults else ""

    # -- executor ---------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.clock.now()
        if self.state is State.STARTING:
            self.waiting = self._ready(now)
            if not self.waiting:
                self._acquire()
            return
        if self.state not in (State.RUNNING, State.PAUSED):
            return
        t = now + self.params.lead
        if problem := self._ownership_problem():
            # Hand the arms back only while they are still ours: a hold asked by a non-owner would
            # stop whoever took them.
            owner = self.arms_status.owner if self.arms_status is not None else self.node.name
            self._fail(problem, release=owner == self.node.name)
            return
        req = self.scheduler.in_flight
        if req is not None and t - req.issued_at > self.params.inference_timeout:
            self.scheduler.on_failure(t, req.seq, "timeout")
            self._fail(f"inference timed out: no chunk {self.params.inference_timeout:g} s after request {req.seq}")
            return
        if self.state is State.PAUSED:
            self._send_hold(t)
            return
        self._maybe_request(now, t)
        tick = self.queue.due(t)
        if not tick.hold:
            self._send(tick.target, tick.stamp)
            self.targets_sent += 1
        else:
            self._send_hold(t)

    def _send_hold(self, t: float) -> None:
        """Hold still: the last target sent, or the pose measured when the arms were taken."""
        target = self._hold if self.state is State.PAUSED else self._current_hold()
        if target is None:
            return
        self._send(target, t)
        self.holds_sent += 1

    def _send(self, target: np.ndarray, stamp: float) -> None:
        # Stamps strictly increase: a hold is stamped at its tick, and after a late tick the next action
        # due on the chunk's grid can be stamped no later than it; 1 ms later changes nothing for the arm.
        if self._last_stamp is not None and stamp < self._last_stamp - 1.0:
            self._last_stamp = None  # the clock went back (a restarted sim): a new timeline
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + 1e-3
        self._last_stamp = stamp
        self.target_pub.publish(_rig_target(target, stamp, self.node.name))

    def _current_hold(self) -> np.ndarray | None:
        return self.queue.last_sent if self.queue.last_sent is not None else self._hold

    def _forget_committed(self) -> None:
        self.queue.clear()
        if self.scheduler.in_flight is not None:
            self.scheduler.on_failure(self.clock.now() + self.params.lead, self.scheduler.in_flight.seq, "cancelled")
        self._pending = None

    def _maybe_request(self, now: float, t: float) -> None:
        if self.worker.busy or not self.scheduler.should_request(t):
            return
        got = self.inputs.observe(now)
        if isinstance(got, Refusal):
            self.refusals[got.kind] = self.refusals.get(got.kind, 0) + 1
            if self.waiting != str(got):
                self.log.warning("no new chunk: %s", got)
            self.waiting = str(got)
            return
        if self.waiting:
            self.log.info("observations usable again")
        self.waiting = ""
        req = self.scheduler.request(t, got.stamp, got.measured)
        self._pending = req
        self.worker.submit(InferenceJob(req.seq, (got, self.instruction, req.prefix, self.params.seed + req.seq)))

    def _on_done(self, done: InferenceDone) -> None:
        req = self._pending
        if req is None or req.seq != done.seq or self.state is not State.RUNNING:
            return  # cancelled (stop, pause, fault, timeout): its result is not used
        self._pending = None
        t = self.clock.now() + self.params.lead
        self.latencies.append(done.wall_s)
        if done.error:
            self.scheduler.on_failure(t, done.seq, done.error)
            self._fail(f"inference failed: {done.error}")
            return
        out = done.output
        actions = np.asarray(out.actions)[: self.horizon]
        res = self.scheduler.on_chunk(t, done.seq, float(out.reference_stamp), actions)
        if not res.accepted:
            self.refusals[res.reason.split(":")[0]] = self.refusals.get(res.reason.split(":")[0], 0) + 1
            if res.reason.startswith(("non-finite", "wrong shape", "stamp mismatch")):
                self._fail(f"chunk {done.seq} refused: {res.reason}")
            else:
                self.log.warning("chunk %d refused: %s", done.seq, res.reason)
            return
        self.first_steps.append(res.first_step)
        self._publish_chunk(req, out, actions)

    def _publish_chunk(self, req: ChunkRequest, out: Any, actions: np.ndarray) -> None:
        chunk = compose_chunk(actions, req.measured, float(out.reference_stamp), self.period, req.seq,
                              source=Path(self.params.checkpoint).name or "policy")
        self.chunk_pub.publish(chunk)
        if self.decoder is None:
            return
        if self.decoder.busy:
            self.frames_skipped += 1  # best effort: the actions never wait for the video
        else:
            self.decoder.submit(InferenceJob(req.seq, out))

    def _on_frames(self, done: InferenceDone) -> None:
        if done.error:
            self.log.warning("decoding the predicted frames of chunk %d failed: %s", done.seq, done.error)
            self.frames_skipped += 1
            return
        out, frames = done.output
        for i, vid in enumerate(out.view_ids):
            view = self.inputs.views[self.inputs.view_ids.index(vid)]
            for frame, stamp in zip(frames[i], out.frame_stamps):
                self.frame_pubs[view].publish(CameraFrame(view, np.ascontiguousarray(frame), float(stamp),
                                                          frame_id=optical_frame(view)))
                self.frames_published += 1

    def _set_state(self, state: State, why: str) -> None:
        if state is not self.state:
            self.log.info("policy %s -> %s: %s", self.state.value, state.value, why)
        self.state = state

    # -- reporting --------------------------------------------------------------------------------
    def health(self) -> tuple[DiagnosticLevel, str] | None:
        if self.state is State.FAULT:
            return DiagnosticLevel.ERROR, f"fault, arms held: {self.fault}"
        if self.state is State.RUNNING and self.waiting and self.queue.remaining(self.clock.now()) <= 0:
            return DiagnosticLevel.WARN, f"holding, no usable observation: {self.waiting}"
        if self.state is State.STARTING and self.waiting:
            return DiagnosticLevel.WARN, self.waiting
        return None

    def diagnostics(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies)
        rep = self.timer_stats.report()
        prefixes = self.scheduler.prefix_lengths
        out: dict[str, Any] = {
            "state": self.state.value,
            "instruction": self.instruction,
            "mode": self.scheduler.mode.value,
            "chunks": self.scheduler.chunks,
            "targets_sent": self.targets_sent,
            "holds_sent": self.holds_sent,
            "stalls": self.queue.stalls,
            "dropped_actions": self.queue.dropped,
            "faults": self.faults,
            "executor_period_err_p99_ms": round(rep.error_p99 * 1e3, 2) if rep.count > 1 else "nan",
            "delay_p95_s": round(self.scheduler.delays.p95(), 3),
            "rtc_prefix_last": prefixes[-1] if prefixes else 0,
            "frames_published": self.frames_published,
            "frames_skipped": self.frames_skipped,
        }
        if lat.size:
            out.update(inference_p50_s=round(float(np.percentile(lat, 50)), 3),
                       inference_p95_s=round(float(np.percentile(lat, 95)), 3),
                       inference_max_s=round(float(lat.max()), 3))
        if self.first_steps:
            out["delay_steps_last"] = self.first_steps[-1]
            out["delay_steps_max"] = max(self.first_steps)
        for kind, n in sorted(self.refusals.items()):
            out[f"refused {kind}"] = n
        if self.fault:
            out["fault"] = self.fault
        if self.waiting:
            out["waiting"] = self.waiting
        return out

    def shutdown(self) -> None:
        self.timer.cancel()
        if self.state in (State.RUNNING, State.PAUSED):
            self._release("shut down")
        self.log.info("policy node: %s", " ".join(f"{k}={v}" for k, v in self.diagnostics().items()
                                                   if k not in ("instruction", "fault", "waiting")))
