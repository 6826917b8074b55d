"""Sampler: schedule, steps against closed forms, frame-replace conditioning, seeding, NFE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from a2world.sampler import (
    FrameCondition,
    SamplerConfig,
    ab2_step,
    denoise,
    euler_step,
    first_frame_mask,
    initial_noise,
    karras_sigmas,
    rf_scaling,
    sample,
)


def test_karras_schedule_closed_form_and_reference_values():
    s = karras_sigmas(35, 0.01, 200.0, 7.0)
    assert s.dtype == np.float64 and s.shape == (36,)
    i = np.arange(36)
    closed = (200 ** (1 / 7) + i / 35 * (0.01 ** (1 / 7) - 200 ** (1 / 7))) ** 7
    np.testing.assert_allclose(s, closed, rtol=1e-12)
    assert s[0] == pytest.approx(200.0) and s[-1] == pytest.approx(0.01)
    # values quoted in a2world_release_facts.md §3.2
    np.testing.assert_allclose(s[[1, 2, -4, -3, -2]], [171.6, 146.8, 0.0525, 0.0315, 0.0182], rtol=3e-3)
    t = s / (1 + s)
    assert t[0] == pytest.approx(0.99502, abs=1e-5) and t[-1] == pytest.approx(0.0099, abs=1e-4)
    assert np.all(np.diff(s) < 0)


def test_rf_scaling_gives_velocity_parameterisation():
    sigma = 3.0
    c_skip, c_out, c_in, c_noise = rf_scaling(sigma)
    x0, eps = 0.7, -1.3
    x_sigma = x0 + sigma * eps
    t = sigma / (1 + sigma)
    assert c_in * x_sigma == pytest.approx((1 - t) * x0 + t * eps)  # RF sample
    assert c_skip * x_sigma + c_out * (eps - x0) == pytest.approx(x0)  # velocity -> x0
    assert c_noise == pytest.approx(t)


def _exact_solution(x, a, b, lam, h):
    """ODE dx/dλ = x0(λ) - x with x0(λ) = a + bλ, solved from λ to λ + h."""
    x0_now = a + b * lam
    return math.exp(-h) * x + x0_now * (1 - math.exp(-h)) + b * (h - 1 + math.exp(-h))


@pytest.mark.parametrize("sigmas", [(200.0, 171.6, 146.8), (0.08, 0.05, 0.0315), (5.0, 2.0, 1.1)])
def test_ab2_exact_for_x0_linear_in_lambda(sigmas):
    sp, s, sn = sigmas
    a, b, x = 0.3, -0.8, 2.5
    lam = lambda sig: -math.log(sig)  # noqa: E731
    x0, x0_prev = a + b * lam(s), a + b * lam(sp)
    got = ab2_step(torch.tensor(x, dtype=torch.float64), torch.tensor(x0, dtype=torch.float64),
                   torch.tensor(x0_prev, dtype=torch.float64), sp, s, sn)
    assert got.item() == pytest.approx(_exact_solution(x, a, b, lam(s), lam(sn) - lam(s)), rel=1e-12)


def test_euler_step_exact_for_constant_x0():
    x, x0, s, sn = 10.0, 0.4, 200.0, 171.6
    # exact: x(σ') = x0 + (σ'/σ)(x - x0)
    assert euler_step(x, x0, s, sn) == pytest.approx(x0 + sn / s * (x - x0), rel=1e-14)


def test_initial_noise_matches_numpy_randomstate():
    got = initial_noise((1, 16, 12, 8, 8), 7)
    ref = np.random.RandomState(7).standard_normal((1, 16, 12, 8, 8)).astype(np.float32)
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), ref)


def _condition(inputs):
    b, _, vt, h, w = inputs["x"].shape
    v = inputs["view_ids"].shape[1]
    return FrameCondition(
        clean=inputs["x"],
        frame_mask=first_frame_mask(b, v, vt // v),
        view_ids=inputs["view_ids"],
        actions=inputs["actions"],
        history=inputs.get("history"),
    )


def test_denoise_replaces_conditioning_frames(tiny_net, tiny_inputs, variant):
    net = tiny_net(variant)
    cond = _condition(tiny_inputs(variant))
    seen = {}

    def grab(_module, args):
        seen["x"], seen["t"] = args[0].clone(), args[1].clone()

    handle = net.register_forward_pre_hook(grab)
    x_sigma = initial_noise(tuple(cond.clean.shape), 0).double() * 5.0
    x0 = denoise(net, x_sigma, 5.0, cond)
    handle.remove()
    m = cond.frame_mask.bool()  # (B, V·T)
    c_in = rf_scaling(5.0)[2]
    # Conditioning frames: clean latent in, clean latent out, timestep c_noise(1e-4).
    torch.testing.assert_close(seen["x"].permute(0, 2, 1, 3, 4)[m], cond.clean.permute(0, 2, 1, 3, 4)[m])
    torch.testing.assert_close(x0.permute(0, 2, 1, 3, 4)[m], cond.clean.permute(0, 2, 1, 3, 4)[m])
    torch.testing.assert_close(seen["t"][m], torch.full_like(seen["t"][m], 1e-4 / (1 + 1e-4)))
    # Generated frames: c_in · x_σ and c_noise(σ).
    torch.testing.assert_close(
        seen["x"].permute(0, 2, 1, 3, 4)[~m], (c_in * x_sigma.float()).permute(0, 2, 1, 3, 4)[~m]
    )
    torch.testing.assert_close(seen["t"][~m], torch.full_like(seen["t"][~m], 5.0 / 6.0))


def test_sample_nfe_determinism_and_conditioning(tiny_net, tiny_inputs):
    net = tiny_net("sim")
    cond = _condition(tiny_inputs("sim"))
    calls = []
    handle = net.register_forward_pre_hook(lambda _m, _a: calls.append(1))
    cfg = SamplerConfig()  # 35 steps as released
    a = sample(net, cond, seed=3, config=cfg)
    handle.remove()
    assert len(calls) == 36  # 35 steps + the final evaluation at σ_min (one forward each)
    short = SamplerConfig(num_steps=3)
    b = sample(net, cond, seed=3, config=short)
    assert torch.equal(b, sample(net, cond, seed=3, config=short))
    assert not torch.equal(b, sample(net, cond, seed=4, config=short))
    m = cond.frame_mask.bool()
    torch.testing.assert_close(a.permute(0, 2, 1, 3, 4)[m], cond.clean.permute(0, 2, 1, 3, 4)[m])
    assert torch.isfinite(a).all()


def test_sampler_config_validation():
    with pytest.raises(ValueError, match="num_steps"):
        SamplerConfig(num_steps=0)
    with pytest.raises(ValueError, match="sigma_min"):
        SamplerConfig(sigma_min=300.0)
