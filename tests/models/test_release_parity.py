"""fp32 parity with the official A2World release on the three paths an independent check found off.

Each test holds a small reference implementation of the release's behaviour, written from
a2world_release_facts.md (§4.1 path features, §4.3 history tokenizer, §3.4/§4 pixel scaling) and
the release code it summarises, and compares it with ours on tiny inputs. Target: relative error
<= 1e-5 in fp32 on every path.

`python tests/models/test_release_parity.py` prints the fp32 relative error of an A2World-sim
forward (tiny config) with and without the history bf16 quirk, against the release reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from a2world.config import QuirkOptions, tiny_config
from a2world.dit import HistoryInputs, build_dit
from a2world.history import action_path_features
from a2world.history_modules import HistoryTokenizer
from a2world.rollout import encode_history_frames, to_unit

RTOL = 1e-5


def rel_err(ours: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> float:
    """||ours - ref|| / ||ref|| over all elements (fp64 arithmetic)."""
    a = torch.as_tensor(np.asarray(ours, dtype=np.float64)) if isinstance(ours, np.ndarray) else ours.double()
    b = torch.as_tensor(np.asarray(ref, dtype=np.float64)) if isinstance(ref, np.ndarray) else ref.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


# ------------------------------------------------------------------------- (a) path features
def release_path_features(history_actions: np.ndarray, future_actions: np.ndarray, indices) -> np.ndarray:
    """The release's `action_path_features` (§4.1): a toggle is every change of the raw gripper
    value between consecutive nodes; node 0 takes the first action's gripper."""
    edges = np.concatenate([history_actions, future_actions]).astype(np.float64)
    node_gripper = np.concatenate([[history_actions[0, 6]], edges[:, 6]])
    prefix = np.concatenate([np.zeros((1, 6)), np.cumsum(edges[:, :6], 0)])
    prefix_abs = np.concatenate([np.zeros((1, 6)), np.cumsum(np.abs(edges[:, :6]), 0)])
    prefix_sq = np.concatenate([np.zeros((1, 6)), np.cumsum(edges[:, :6] ** 2, 0)])
    toggles = np.concatenate([[0.0], np.cumsum(node_gripper[1:] != node_gripper[:-1])])
    history_nodes = len(history_actions) + 1
    out = np.zeros((len(future_actions), len(indices), 22), dtype=np.float32)
    for fi in range(len(future_actions)):
        target = history_nodes + fi
        for si, start in enumerate(indices):
            length = target - start
            mean = (prefix[target] - prefix[start]) / length
            mean[:3] = np.tanh(mean[:3] / 0.05)
            mean[3:] = np.tanh(mean[3:] / 0.25)
            out[fi, si] = np.concatenate(
                [
                    mean,
                    (prefix_abs[target] - prefix_abs[start]) / length,
                    np.sqrt((prefix_sq[target] - prefix_sq[start]) / length),
                    [
                        length / len(edges),
                        node_gripper[start],
                        node_gripper[target],
                        (toggles[target] - toggles[start]) / max(toggles[-1], 1.0),
                    ],
                ]
            )
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_hist=st.integers(1, 60),
    n_future=st.integers(1, 20),
    kind=st.sampled_from(["continuous", "binary", "steps", "constant", "near_half"]),
)
def test_path_features_match_release(seed, n_hist, n_future, kind):
    rng = np.random.default_rng(seed)
    actions = rng.normal(0, 0.02, (n_hist + n_future, 14))
    g = {
        "continuous": lambda n: rng.uniform(0, 1, n),
        "binary": lambda n: rng.integers(0, 2, n).astype(float),
        # a gripper that moves in small steps without crossing 0.5, then holds
        "steps": lambda n: np.minimum(np.cumsum(rng.uniform(0, 0.05, n)), 0.45),
        "constant": lambda n: np.full(n, 0.7),
        "near_half": lambda n: 0.5 + rng.choice([-1e-3, 0.0, 1e-3], n),
    }[kind]
    actions[:, 6] = g(len(actions))
    hist, fut = actions[:n_hist], actions[n_hist:]
    slots = np.sort(rng.integers(0, n_hist + 1, 7))
    targets = n_hist + 1 + np.arange(n_future)
    ours = action_path_features(actions, slots, targets)
    ref = release_path_features(hist, fut, slots)
    assert rel_err(ours, ref) <= RTOL
    np.testing.assert_allclose(ours[..., 21], ref[..., 21], rtol=1e-6, atol=1e-7)


# --------------------------------------------------------- (b) history tokenizer bf16 rounding
def release_sincos_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """`_make_2d_sincos` of the release (§4.3): [y | x], each [sin | cos], linspace(-1, 1)."""
    half = dim // 4
    yy, xx = torch.meshgrid(torch.linspace(-1.0, 1.0, h), torch.linspace(-1.0, 1.0, w), indexing="ij")
    omega = 1.0 / (10000 ** (torch.arange(half).float() / half))
    out_x, out_y = xx[..., None] * omega, yy[..., None] * omega
    pe = torch.cat([torch.cat([out_y.sin(), out_y.cos()], -1), torch.cat([out_x.sin(), out_x.cos()], -1)], -1)
    return pe.reshape(h * w, dim)


class ReleaseHistoryTokenizer(nn.Module):
    """The release's `PoseAwareHistoryTokenizer` at inference (state=None), sharing `ours`'s weights.

    The release net calls it with `history.to(bfloat16)` and projects `pe2d.to(bfloat16)`, so both
    pass through bf16 whatever the net's dtype (§4.3); here every op after that runs in fp32.
    """

    def __init__(self, ours: HistoryTokenizer) -> None:
        super().__init__()
        self.down, self.pe2d_proj, self.pe_dim = ours.down, ours.pe2d_proj, ours.pe_dim

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        dtype = self.pe2d_proj.weight.dtype
        latent = latent.to(torch.bfloat16).to(dtype)
        b, c, f, h, w = latent.shape
        x = self.down(latent.transpose(1, 2).reshape(b * f, c, h, w))
        hh, ww = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pe = release_sincos_2d(hh, ww, self.pe_dim).to(torch.bfloat16).to(dtype)
        x = x + self.pe2d_proj(pe)[None]
        return x.reshape(b, f * hh * ww, -1)


def _sim_pair(history_bf16: bool, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """(ours with the quirk set as given, the release reference) with identical fp32 weights."""
    torch.manual_seed(seed)
    quirks = QuirkOptions(history_bf16_rounding=history_bf16)
    ours = build_dit(tiny_config("sim", quirks=quirks)).eval()
    ref = build_dit(tiny_config("sim", quirks=QuirkOptions(history_bf16_rounding=False))).eval()
    ref.load_state_dict(ours.state_dict())
    ref.history_tokenizer = ReleaseHistoryTokenizer(ref.history_tokenizer)
    return ours, ref


def sim_inputs(seed: int, views: tuple[int, ...] = (2, 0), hw: int = 8) -> dict:
    """Inputs of one A2World-sim forward: 6 latent frames and 5 history latents per view."""
    g = torch.Generator().manual_seed(seed)
    v = len(views)
    mask = torch.zeros(1, v, 6)
    mask[:, :, 0] = 1
    return dict(
        x=torch.randn(1, 16, v * 6, hw, hw, generator=g),
        timesteps=torch.rand(1, v * 6, generator=g),
        view_ids=torch.tensor([list(views)]),
        condition_mask=mask.reshape(1, v * 6),
        actions=torch.randn(1, 20, 14, generator=g) * 0.05,
        history=HistoryInputs(
            latent=torch.randn(1, 16, v * 5, hw, hw, generator=g) * 2,
            state=torch.randn(1, 20, 20, 22, generator=g),
        ),
    )


def sim_forward_errors(seeds=range(3)) -> dict[str, float]:
    """Worst fp32 relative error of an A2World-sim forward against the release reference."""
    out = {}
    for quirk in (True, False):
        worst = 0.0
        for seed in seeds:
            ours, ref = _sim_pair(quirk, seed)
            inputs = sim_inputs(seed + 1)
            with torch.no_grad():
                worst = max(worst, rel_err(ours(**inputs), ref(**inputs)))
        out["with quirk" if quirk else "without quirk"] = worst
    return out


def test_history_bf16_rounding_is_the_default():
    assert QuirkOptions().history_bf16_rounding is True
    assert tiny_config("sim").quirks.history_bf16_rounding is True


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_history_tokenizer_matches_release(seed):
    ours, ref = _sim_pair(True, seed)
    latent = torch.randn(1, 16, 10, 8, 8, generator=torch.Generator().manual_seed(seed)) * 3
    with torch.no_grad():
        got = ours.history_tokenizer(latent.to(torch.bfloat16).float())
        want = ref.history_tokenizer(latent)
    assert rel_err(got, want) <= RTOL


def test_sim_forward_matches_release_in_fp32():
    errors = sim_forward_errors()
    assert errors["with quirk"] <= RTOL, errors
    # The quirk is the whole difference: without it the error is over the target.
    assert errors["without quirk"] > RTOL, errors


def test_history_quirk_off_keeps_fp32_history():
    ours, _ = _sim_pair(False)
    latent = torch.randn(1, 16, 10, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        exact = ours.history_tokenizer(latent)
        rounded = ours.history_tokenizer(latent.to(torch.bfloat16).float())
    assert not torch.equal(exact, rounded)


# ---------------------------------------------------------------------- (c) pixel scaling
def release_to_unit(frames: np.ndarray) -> torch.Tensor:
    """Release pixel scaling (§4 of wan_vae_facts.md): uint8 -> bf16 -> /127.5 -> -1, in bf16."""
    return torch.from_numpy(np.ascontiguousarray(frames)).to(torch.bfloat16) / 127.5 - 1.0


def test_pixel_scaling_matches_release_bit_for_bit():
    every_value = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    ours = to_unit(every_value)
    ref = release_to_unit(every_value).movedim(-1, -3)
    assert ours.shape == (1, 3, 16, 16)
    assert torch.equal(ours.float(), ref.float())


@pytest.mark.parametrize("single_video", [True, False])
def test_history_encode_uses_release_pixels(single_video):
    from a2world.tokenizer import WanTokenizer

    tok = WanTokenizer(WanTokenizer.tiny(seed=0).vae, temporal_window=None, latent_window=None)
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8) for _ in range(2)]
    got = encode_history_frames(tok, frames, single_video, torch.device("cpu"))
    # the release encodes 1 + 4k frames: 37 of the 40-frame video, 17 of each 20-frame view
    if single_video:
        video = release_to_unit(np.concatenate(frames)).float().movedim(-1, 1)[:37]
        want = tok.encode(video.transpose(0, 1)[None])
    else:
        video = release_to_unit(np.stack(frames)).float().movedim(-1, 2)[:, :17]
        want = tok.encode(video.transpose(1, 2))
        want = want.transpose(0, 1).reshape(1, want.shape[1], -1, *want.shape[-2:])
    assert rel_err(got, want) <= RTOL


if __name__ == "__main__":
    for name, err in sim_forward_errors().items():
        print(f"A2World-sim fp32 forward vs release reference, {name}: relative error {err:.3e}")  # noqa: T201 - the script's report
