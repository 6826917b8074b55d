"""PolicyEngine: chunk outputs and stamps, prefix holding, guidance, seeds, errors, ONNX backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from a2world.policy.config import tiny_policy_config
from a2world.policy.diffusion import Guidance, JointCondition, JointDenoiser, cfg_combine, sample_joint
from a2world.policy.engine import (
    NonFiniteOutputError,
    ObservationTimingError,
    PolicyEngine,
    PolicyEngineConfig,
    make_observation,
)
from a2world.policy.onnx import OnnxDenoiser, export_denoiser
from a2world.sampler import SamplerConfig, first_frame_mask
from a2world.text_embeddings import MissingInstructionError
from a2world.tokenizer import WanTokenizer
from tests.models.support import INSTRUCTION, make_cache, make_policy, random_views

SIZE = (32, 32)  # 4×4 latents, 2×2 tokens per frame with the tiny tokenizer
VIEWS = (0, 1, 2)
# ONNX (onnxruntime CPU) vs torch, float32: one denoiser evaluation and a whole sampled chunk.
ONNX_X0_ATOL = 1e-4
ONNX_CHUNK_ATOL = 1e-3


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def parts():
    cfg = tiny_policy_config()
    policy = make_policy(seed=0, config=cfg)
    # non-trivial normalisation so that prefix handling is exercised through it
    policy.set_action_stats(torch.linspace(-0.2, 0.2, 14), torch.linspace(0.5, 2.0, 14))
    return policy, WanTokenizer.tiny(seed=0), make_cache(cfg)


# The engine's clock for observations stamped 10.000..10.008 (default stamps below).
def NOW() -> float:
    return 10.05


def engine(parts, **changes) -> PolicyEngine:
    policy, tok, cache = parts
    base = PolicyEngineConfig(sampler=SamplerConfig(num_steps=3), image_size=SIZE, view_ids=VIEWS, decode_video=False)
    return PolicyEngine(policy, tok, cache, dataclasses.replace(base, **changes), clock=NOW)


def observation(seed: int = 3, stamps=(10.000, 10.004, 10.008)):
    return make_observation(random_views(3, SIZE, seed), VIEWS, stamps)


def test_chunk_shapes_frames_and_stamps(parts):
    out = engine(parts, decode_video=True).predict(observation(), INSTRUCTION)
    cfg = parts[0].config
    assert out.actions.shape == (60, 14) and out.actions.dtype == np.float32
    assert out.frames is not None and out.frames.shape == (3, 20, *SIZE, 3) and out.frames.dtype == np.uint8
    assert out.reference_stamp == 10.008
    assert np.allclose(out.action_stamps, 10.008 + np.arange(1, 61) / cfg.action_rate_hz)
    assert np.allclose(out.frame_stamps, 10.008 + np.arange(1, 21) / cfg.backbone.fps)
    assert np.isfinite(out.actions).all()


def test_prefix_is_held_exactly(parts):
    rng = np.random.default_rng(0)
    prefix = rng.normal(size=(7, 14)).astype(np.float32)
    eng = engine(parts)
    out = eng.predict(observation(), INSTRUCTION, action_prefix=prefix)
    free = eng.predict(observation(), INSTRUCTION)
    assert np.array_equal(out.actions[:7], prefix)
    assert out.prefix_length == 7
    assert not np.allclose(out.actions[7:], free.actions[7:])  # the prefix conditions the rest

    # below the engine: the sampler's x0 keeps the (normalised) prefix bit for bit
    policy = parts[0]
    cfg = policy.config
    den = JointDenoiser(policy, 1, 2, 2)
    g = torch.Generator().manual_seed(1)
    clean_prefix = torch.randn(1, cfg.action_horizon, 14, generator=g)
    mask = (torch.arange(cfg.action_horizon) < 11).float()[None]
    cond = JointCondition(
        torch.randn(1, 16, cfg.latent_frames, 4, 4, generator=g), first_frame_mask(1, 1, cfg.latent_frames),
        torch.tensor([[2]]), clean_prefix, mask, torch.randn(1, cfg.text_tokens, cfg.context_dim, generator=g),
    )
    x0_v, x0_a = sample_joint(den, cond, (1, cfg.action_horizon, 14), cfg.action_sigma_ratio, 0,
                              SamplerConfig(num_steps=4))
    assert torch.equal(x0_a[:, :11], clean_prefix[:, :11])
    assert torch.equal(x0_v[:, :, 0], cond.clean_video[:, :, 0])
    assert not torch.equal(x0_a[:, 11:], clean_prefix[:, 11:])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_engine_normalises_with_the_policys_current_stats(parts, dtype):
    """One normalisation: the prefix reaches the denoiser as (a − mean)/std and the sampled x0
    comes back as x0·std + mean (in float32), with the stats the policy holds when the engine
    predicts, also after they change."""
    _, tok, cache = parts
    policy = make_policy(seed=0, config=parts[0].config)
    config = PolicyEngineConfig(
        sampler=SamplerConfig(num_steps=1), image_size=SIZE, view_ids=VIEWS, decode_video=False, dtype=dtype
    )
    eng = PolicyEngine(policy, tok, cache, config, clock=NOW)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    denoise = eng.call

    def recording(*args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = denoise(*args)
        seen.append((args[7], x0[1]))  # (normalised prefix, action x0)
        return x0

    eng.call = recording
    rng = np.random.default_rng(5)
    for d in (1, 4, 7):
        prefix = rng.normal(size=(d, 14)).astype(np.float32)
        eng.policy.set_action_stats(
            torch.from_numpy(rng.normal(size=14).astype(np.float32)),
            torch.from_numpy(rng.uniform(0.1, 3.0, size=14).astype(np.float32)),
        )
        mean, std = eng.policy.action_mean.float(), eng.policy.action_std.float()  # as held, in the net's dtype
        seen.clear()
        out = eng.predict(observation(), INSTRUCTION, action_prefix=prefix)
        given, x0_a = seen[-1]
        assert torch.equal(given[0, :d], (torch.from_numpy(prefix) - mean) / std)
        assert np.array_equal(out.actions[d:], (x0_a[0, d:] * std + mean).numpy())
        assert np.array_equal(out.actions[:d], prefix)


def test_guidance_scale_one_equals_conditional(parts):
    cond_only = engine(parts).predict(observation(), INSTRUCTION)
    both = engine(parts, guidance=Guidance(1.0, 1.0, always_run_unconditional=True)).predict(observation(), INSTRUCTION)
    assert np.array_equal(both.actions, cond_only.actions)
    guided = engine(parts, guidance=Guidance(1.0, 3.0)).predict(observation(), INSTRUCTION)
    assert not np.allclose(guided.actions, cond_only.actions)
    c, u = torch.randn(5), torch.randn(5)
    assert torch.equal(cfg_combine(c, u, 1.0), c)
    assert torch.allclose(cfg_combine(c, u, 0.0), u)
    assert torch.allclose(cfg_combine(c, u, 2.5), u + 2.5 * (c - u))


def test_seed_controls_the_sample(parts):
    eng = engine(parts)
    a = eng.predict(observation(), INSTRUCTION, seed=1).actions
    b = eng.predict(observation(), INSTRUCTION, seed=1).actions
    c = eng.predict(observation(), INSTRUCTION, seed=2).actions
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def _drop(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda o: dataclasses.replace(o, images=_drop(o.images, 2)), ValueError, r"missing view 2 \(front\)"),
        (lambda o: dataclasses.replace(o, stamps=_drop(o.stamps, 1)), ValueError, "stamps is missing view 1"),
        (lambda o: dataclasses.replace(o, images={**o.images, 3: o.images[0]}), ValueError, "views \\[3\\]"),
        (lambda o: dataclasses.replace(o, images={**o.images, 0: o.images[0][:16]}), ValueError,
         r"images\[0\] must be uint8 \(32, 32, 3\)"),
        (lambda o: dataclasses.replace(o, images={**o.images, 1: o.images[1].astype(np.float32)}), ValueError,
         r"images\[1\]"),
        (lambda o: dataclasses.replace(o, stamps={**o.stamps, 0: float("nan")}), ValueError, "finite"),
        (lambda o: dataclasses.replace(o, stamps={**o.stamps, 0: 9.9}), ValueError, "spread"),
    ],
)
def test_observation_errors(parts, mutate, error, match):
    eng = engine(parts, max_stamp_spread_s=0.016)
    with pytest.raises(error, match=match):
        eng.predict(mutate(observation()), INSTRUCTION)


def test_instruction_prefix_and_config_errors(parts):
    eng = engine(parts)
    with pytest.raises(MissingInstructionError, match="open the drawer"):
        eng.predict(observation(), "open the drawer")
    with pytest.raises(ValueError, match="max_prefix"):
        eng.predict(observation(), INSTRUCTION, action_prefix=np.zeros((parts[0].config.max_prefix + 1, 14)))
    with pytest.raises(ValueError, match=r"action_prefix must be \(d, 14\)"):
        eng.predict(observation(), INSTRUCTION, action_prefix=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="finite"):
        eng.predict(observation(), INSTRUCTION, action_prefix=np.full((3, 14), np.inf))
    with pytest.raises(ValueError, match="dtype='float32'"):
        PolicyEngineConfig(backend="onnx", dtype="bfloat16")
    with pytest.raises(ValueError, match="image_size"):
        engine(parts, image_size=(40, 40))


def test_non_finite_output_is_an_error(parts):
    _, tok, cache = parts
    policy = make_policy(seed=1, config=parts[0].config)
    with torch.no_grad():
        policy.action_final_layer.linear.weight[0, 0] = float("nan")
    eng = PolicyEngine(policy, tok, cache,
                       PolicyEngineConfig(sampler=SamplerConfig(num_steps=2), image_size=SIZE, decode_video=False),
                       clock=NOW)
    with pytest.raises(NonFiniteOutputError, match="actions"):
        eng.predict(observation(), INSTRUCTION)


def test_bfloat16_engine_runs(parts):
    _, tok, cache = parts
    policy = make_policy(seed=0, config=parts[0].config)
    eng = PolicyEngine(policy, tok, cache,
                       PolicyEngineConfig(sampler=SamplerConfig(num_steps=2), image_size=SIZE, dtype="bfloat16",
                                          decode_video=False),
                       clock=NOW)
    assert eng.policy.dtype == torch.bfloat16
    out = eng.predict(observation(), INSTRUCTION)
    assert out.actions.dtype == np.float32 and np.isfinite(out.actions).all()


def test_onnx_matches_torch(parts, tmp_path):
    policy = parts[0]
    cfg = policy.config
    den = JointDenoiser(policy, 3, 2, 2)
    path = tmp_path / "denoiser.onnx"
    export_denoiser(den, path, batch=2, n_views=3, latent_hw=(4, 4), context_tokens=cfg.text_tokens)
    ort = OnnxDenoiser(path, threads=1)
    g = torch.Generator().manual_seed(9)
    vt, ta = 3 * cfg.latent_frames, cfg.action_horizon
    args = (
        torch.randn(2, 16, vt, 4, 4, generator=g) * 5,
        torch.randn(2, ta, 14, generator=g) * 2,
        torch.tensor([12.0, 0.3]),
        torch.tensor([2.5, 0.06]),
        torch.randn(2, 16, vt, 4, 4, generator=g),
        first_frame_mask(2, 3, cfg.latent_frames),
        torch.tensor([[0, 1, 2], [2, 1, 0]]),
        torch.randn(2, ta, 14, generator=g),
        (torch.arange(ta) < 4).float().expand(2, ta).contiguous(),
        torch.randn(2, cfg.text_tokens, cfg.context_dim, generator=g),
    )
    with torch.no_grad():
        ref = den(*args)
    got = ort(*args)
    for r, o in zip(ref, got):
        assert r.shape == o.shape
        assert (r - o).abs().max().item() < ONNX_X0_ATOL

    guidance = Guidance(1.5, 2.0)
    t_out = engine(parts, guidance=guidance).predict(observation(), INSTRUCTION)
    o_out = engine(parts, guidance=guidance, backend="onnx",
                   onnx_path=str(tmp_path / "e.onnx")).predict(observation(), INSTRUCTION)
    assert (tmp_path / "e.onnx").stat().st_size > 0
    assert np.abs(t_out.actions - o_out.actions).max() < ONNX_CHUNK_ATOL


def test_cli_export_onnx(parts, tmp_path, capsys):
    from a2w.cli import main as a2w_main
    from a2world.policy.checkpoint import save_policy

    policy = parts[0]
    cfg = policy.config
    save_policy(policy, tmp_path / "policy")
    out = tmp_path / "cli.onnx"
    argv = ["policy", "export-onnx", str(tmp_path / "policy"), "--out", str(out), "--views", "1",
            "--latent-size", "4", "4"]
    assert a2w_main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    ort = OnnxDenoiser(out, threads=1)
    den = JointDenoiser(policy, 1, 2, 2)
    g = torch.Generator().manual_seed(4)
    ta = cfg.action_horizon
    args = (
        torch.randn(1, 16, cfg.latent_frames, 4, 4, generator=g), torch.randn(1, ta, 14, generator=g),
        torch.tensor([3.0]), torch.tensor([0.6]), torch.randn(1, 16, cfg.latent_frames, 4, 4, generator=g),
        first_frame_mask(1, 1, cfg.latent_frames), torch.tensor([[2]]), torch.zeros(1, ta, 14),
        torch.zeros(1, ta), torch.randn(1, cfg.text_tokens, cfg.context_dim, generator=g),
    )
    with torch.no_grad():
        ref = den(*args)
    for r, o in zip(ref, ort(*args)):
        assert (r - o).abs().max().item() < ONNX_X0_ATOL


# ------------------------------------------------------------------ observation timing (docs/architecture.md §6)
class FixedClock:
    """The engine's clock, set by the test (the default is time.time)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def timed_engine(parts, now: float, **changes) -> PolicyEngine:
    policy, tok, cache = parts
    base = PolicyEngineConfig(sampler=SamplerConfig(num_steps=2), image_size=SIZE, view_ids=VIEWS, decode_video=False)
    return PolicyEngine(policy, tok, cache, dataclasses.replace(base, **changes), clock=FixedClock(now))


def spread_observation(newest: float, spread: float):
    return observation(stamps=(newest - spread, newest - spread / 2, newest))


def test_default_limits_are_the_design_values():
    cfg = PolicyEngineConfig()
    assert cfg.max_stamp_spread_s == 0.016  # docs/architecture.md §6
    assert cfg.max_observation_age_s is not None and 0 < cfg.max_observation_age_s <= 1.0


@pytest.mark.parametrize("spread", [0.0, 0.004, 0.0159])
def test_default_spread_accepts_paired_views(parts, spread):
    eng = timed_engine(parts, now=100.0)
    assert eng.check_observation(spread_observation(100.0, spread)) == 100.0


@pytest.mark.parametrize("spread", [0.0161, 0.033, 0.5, 10.0, 3600.0])
def test_default_spread_refuses_unpaired_views(parts, spread):
    eng = timed_engine(parts, now=100.0)
    with pytest.raises(ObservationTimingError, match=r"spread .* max_stamp_spread_s \(16\.0 ms\)"):
        eng.check_observation(spread_observation(100.0, spread))


@pytest.mark.parametrize("limit, ok, bad", [(0.05, 0.049, 0.051), (0.2, 0.19, 0.21), (2.0, 1.9, 2.1)])
def test_spread_limit_is_configurable(parts, limit, ok, bad):
    # the age limit is off here: a wide spread also makes the oldest view old
    eng = timed_engine(parts, now=100.0, max_stamp_spread_s=limit, max_observation_age_s=None)
    eng.check_observation(spread_observation(100.0, ok))
    with pytest.raises(ObservationTimingError, match="spread"):
        eng.check_observation(spread_observation(100.0, bad))
    unchecked = timed_engine(parts, now=100.0, max_stamp_spread_s=None, max_observation_age_s=None)
    unchecked.check_observation(spread_observation(100.0, 10.0))


@pytest.mark.parametrize("age", [0.0, 0.05, 0.2, 0.45])
def test_default_age_accepts_fresh_observations(parts, age):
    eng = timed_engine(parts, now=1000.0 + age)
    assert eng.check_observation(spread_observation(1000.0, 0.008)) == 1000.0


@pytest.mark.parametrize("age", [0.6, 1.0, 10.0, 3600.0, 86400.0])
def test_default_age_refuses_old_observations(parts, age):
    eng = timed_engine(parts, now=1000.0 + age)
    with pytest.raises(ObservationTimingError, match=r"old .*engine clock .*max_observation_age_s"):
        eng.check_observation(spread_observation(1000.0, 0.0))
    with pytest.raises(ObservationTimingError, match="old"):
        eng.predict(spread_observation(1000.0, 0.0), INSTRUCTION)


@pytest.mark.parametrize("ahead", [0.6, 5.0, 3600.0])
def test_observation_from_the_future_is_refused(parts, ahead):
    eng = timed_engine(parts, now=1000.0)
    with pytest.raises(ObservationTimingError, match="future"):
        eng.check_observation(spread_observation(1000.0 + ahead, 0.0))


@pytest.mark.parametrize("limit, ok, bad", [(0.1, 0.09, 0.11), (2.0, 1.5, 2.5), (60.0, 59.0, 61.0)])
def test_age_limit_is_configurable(parts, limit, ok, bad):
    clock = FixedClock(0.0)
    policy, tok, cache = parts
    cfg = PolicyEngineConfig(sampler=SamplerConfig(num_steps=2), image_size=SIZE, view_ids=VIEWS,
                             decode_video=False, max_observation_age_s=limit)
    eng = PolicyEngine(policy, tok, cache, cfg, clock=clock)
    obs = spread_observation(500.0, 0.0)
    clock.now = 500.0 + ok
    eng.check_observation(obs)
    clock.now = 500.0 + bad
    with pytest.raises(ObservationTimingError, match="old"):
        eng.check_observation(obs)
    unchecked = timed_engine(parts, now=500.0 + 3600.0, max_observation_age_s=None)
    unchecked.check_observation(obs)


def test_default_clock_is_wall_time(parts):
    import time

    policy, tok, cache = parts
    eng = PolicyEngine(policy, tok, cache, PolicyEngineConfig(image_size=SIZE, view_ids=VIEWS, decode_video=False))
    eng.check_observation(spread_observation(time.time(), 0.004))
    with pytest.raises(ObservationTimingError, match="old"):
        eng.check_observation(spread_observation(time.time() - 3600.0, 0.004))


@pytest.mark.parametrize("field", ["max_stamp_spread_s", "max_observation_age_s"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1, -1e9])
def test_timing_limits_must_be_finite_and_non_negative(field, value):
    with pytest.raises(ValueError, match=field):
        PolicyEngineConfig(**{field: value})
