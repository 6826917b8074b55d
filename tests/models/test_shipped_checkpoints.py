"""The checkpoints shipped in models/checkpoints/sim/ (issue 17 item 4): each has its model card, loads
strictly, and runs one inference on a sim-sized input; together they stay within the size budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "checkpoints" / "sim"
SIZE = (64, 64)
VIEWS = (0, 1, 2)
BUDGET_MB = 40.0
# What models/checkpoints/sim/ must hold (README.md lists them with their cards).
EXPECTED = ("tokenizer", "policy", "worldmodel_sim")

pytestmark = pytest.mark.usefixtures("one_thread")


def _sim_views(task: str = "pick_cube", seed: int = 0) -> list[np.ndarray]:
    """The three views of a held-out sim episode's first frame, as the recorder saw them (128x96) and
    the models see them (resized to 64x64 like a2w.train.data)."""
    from a2w.sim.scene import SceneConfig
    from a2w.sim.tasks import get_task
    from a2w.sim.world import VIEW_CAMERAS, SimWorld
    from a2world.policy.engine import resize_view

    world = SimWorld(SceneConfig(task=task))
    try:
        get_task(task).reset(world, np.random.default_rng(seed))
        world.step_for(0.2)
        return [resize_view(world.render(VIEW_CAMERAS[v], 128, 96), SIZE)
                for v in ("left_wrist", "right_wrist", "front")]
    finally:
        world.close()


def test_the_shipped_set_is_complete_carded_and_within_budget() -> None:
    assert SHIPPED.is_dir(), f"{SHIPPED} is missing"
    dirs = sorted(d.name for d in SHIPPED.iterdir() if d.is_dir())
    assert set(EXPECTED) <= set(dirs), dirs
    for name in dirs:
        card = (SHIPPED / name / "README.md").read_text()
        for section in ("## Data", "## Training", "## Evaluation", "## Reproduce"):
            assert section in card, f"{name}/README.md has no {section!r} section"
    size = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file()) / 2**20
    assert size <= BUDGET_MB, f"{size:.1f} MB shipped, budget {BUDGET_MB} MB"


def test_the_tokenizer_loads_strictly_and_reconstructs_a_sim_frame() -> None:
    from a2world.rollout import to_unit
    from a2world.tokenizer import WanTokenizer

    tok = WanTokenizer.from_checkpoint(SHIPPED / "tokenizer" / "tokenizer.safetensors", dtype=None)
    frames = np.stack(_sim_views())
    with torch.no_grad():
        x = to_unit(frames)[:, :, None]  # (3, 3, 1, H, W): each view its own one-frame clip
        rec = tok.decode(tok.encode(x))
    assert rec.shape == x.shape and torch.isfinite(rec).all()
    mse = float(((rec.clamp(-1, 1) - x) ** 2).mean()) / 4.0  # in [0, 1] units
    psnr = -10.0 * np.log10(mse)
    assert psnr > 18.0, psnr  # the card: 22 dB on training clips; a random tokenizer is near 8 dB


def test_the_tokenizer_decodes_a_whole_world_model_chunk() -> None:
    """Every frame of a 21-frame clip (6 latents, one world-model chunk) decodes: a decoder trained on
    5-frame clips decodes its first two latents only (6-8 dB from frame 12 on, the card's table)."""
    from a2world.rollout import to_unit
    from a2world.tokenizer import WanTokenizer

    tok = WanTokenizer.from_checkpoint(SHIPPED / "tokenizer" / "tokenizer.safetensors", dtype=None)
    still = np.repeat(np.stack(_sim_views())[:, None], 21, axis=1)  # (V, 21, H, W, 3): a still scene
    x = to_unit(still).transpose(1, 2)  # (V, 3, 21, H, W)
    with torch.no_grad():
        rec = tok.decode(tok.encode(x))
    mse = ((rec.clamp(-1, 1) - x) ** 2).mean(dim=(0, 1, 3, 4)) / 4.0
    psnr = -10.0 * np.log10(mse.numpy())
    assert psnr.shape == (21,) and psnr.min() > 18.0, np.round(psnr, 1)


def test_the_policy_loads_strictly_and_predicts_a_chunk() -> None:
    from a2world.policy.bundle import load_bundle
    from a2world.policy.engine import PolicyEngine, PolicyEngineConfig, make_observation
    from a2world.sampler import SamplerConfig

    bundle = load_bundle(SHIPPED / "policy")
    rt = bundle.runtime
    assert rt.image_size == SIZE and rt.view_ids == VIEWS and rt.instruction
    cfg = PolicyEngineConfig(sampler=SamplerConfig(num_steps=2), image_size=rt.image_size, view_ids=rt.view_ids,
                             decode_video=False)
    engine = PolicyEngine(bundle.policy, bundle.tokenizer, bundle.text_cache, cfg, clock=lambda: 1.0)
    obs = make_observation(_sim_views(), cfg.view_ids, (0.99, 0.99, 0.99))
    out = engine.predict(obs, "pick up the cube")
    assert out.actions.shape == (60, 14) and np.isfinite(out.actions).all()
    # sim-scale motion: the demonstrations move a TCP at most a few cm per 30 Hz step
    assert np.abs(out.actions[:, [0, 1, 2, 7, 8, 9]]).max() < 0.05


def test_the_shadow_world_model_loads_strictly_and_a_still_scene_is_nominal() -> None:
    """A2World-sim as the shadow node loads it, with its calibrated thresholds: a still scene (the easiest
    nominal window: no motion, the history all start frames) scores below the ALARM threshold."""
    from a2w.shadow.alarm import Thresholds
    from a2w.shadow.predictor import Keyframe, ShadowPredictor, Window, load_rollout

    d = SHIPPED / "worldmodel_sim"
    thresholds = Thresholds.load(d / "shadow_thresholds.json")
    rollout = load_rollout(d, SIZE, steps=4, seed=0)  # strict: every key, shape and the config
    assert rollout.net.config.use_history
    views = ("left_wrist", "right_wrist", "front")
    frames = dict(zip(views, _sim_views()))
    keys = [Keyframe(0.1 * i, frames) for i in range(21)]
    still = np.zeros((20, 14), np.float32)
    still[:, [6, 13]] = 1.0  # zero TCP deltas; an action carries the absolute gripper command (open at the start)
    scores = ShadowPredictor(rollout, views, VIEWS).score(Window(0, keys, still))
    assert len(scores) == 3 and all(np.isfinite(s.score) for s in scores)
    assert max(s.score for s in scores) < thresholds.alarm, (scores, thresholds)


@pytest.mark.parametrize("fault", ["object_removed", "camera_freeze"])
def test_the_shadow_alarms_on_a_removed_object_and_a_frozen_camera_not_on_the_nominal_run(fault: str) -> None:
    """Issue 18's alarm test with the trained model: a held-out pick_cube episode replayed through the
    node's windows (its default stride) and alarm logic at the shipped thresholds. The object vanishes, or
    the front camera freezes, at 3 s (the arm is descending to the cube); the same episode without a fault
    never reaches ALARM."""
    from a2w.shadow.alarm import Thresholds
    from a2w.shadow.component import ShadowNodeParams
    from a2w.shadow.evaluate import NOMINAL, capture_episode, capture_windows, judge
    from a2w.shadow.predictor import ShadowPredictor, load_rollout
    from a2w.sim.faults import FaultSpec

    d = SHIPPED / "worldmodel_sim"
    thresholds = Thresholds.load(d / "shadow_thresholds.json")
    stride = ShadowNodeParams().stride
    rollout = load_rollout(d, SIZE, steps=4, seed=0)
    views = ("left_wrist", "right_wrist", "front")
    target = "cube" if fault == "object_removed" else "front"
    seed = 100
    for spec in (FaultSpec(fault, 3.0, target), None):
        cap = capture_episode("pick_cube", seed, spec, views, SIZE, hold_after=2.0)
        res = judge(cap, capture_windows(cap, stride), ShadowPredictor(rollout, views, VIEWS), thresholds,
                    fault if spec else NOMINAL, seed, target if spec else "")
        if spec is None:
            assert not res.false_alarm and max(res.levels) < 2, (res.scores, thresholds)
        else:
            assert res.detected_at is not None and not res.false_alarm, (res.scores, res.window_ends, cap.onset)
