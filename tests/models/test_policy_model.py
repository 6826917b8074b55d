"""A2World-policy network: structure, forward/backward, token positions, attention decisions."""

from __future__ import annotations

import math

import pytest
import torch

from a2world.config import QuirkOptions, released_config, tiny_config
from a2world.dit import build_dit
from a2world.policy.config import PolicyConfig, released_policy_config, tiny_policy_config
from a2world.policy.model import build_policy
from a2world.policy.positions import action_angles, rope_angles_at
from a2world.release_layout import released_layout
from a2world.rope import RotaryPosition3D, rope_split
from a2world.stem import VideoStem
from tests.models.support import make_policy, make_policy_inputs

A2WORLD_PRETRAINED_PARAMS = 2_527_345_180  # a2world_release_facts.md §1.1
STEM = ("x_embedder_multiview.", "pos_embedder_options.", "t_embedder.", "t_embedding_norm.", "view_embeddings.",
        "final_layer.")
DROPPED = ("action_embedder_B_D_agi.", "action_embedder_B_3D_agi.", "action_to_crossattn_emb.",
           "black_to_crossattn_emb.")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_forward_backward():
    policy = make_policy().train()
    cfg = policy.config
    inputs = make_policy_inputs(cfg, batch=2)
    out_v, out_a = policy(**inputs)
    assert out_v.shape == inputs["x_video"].shape
    assert out_a.shape == (2, cfg.action_horizon, cfg.action_width)
    (out_v.square().mean() + out_a.square().mean()).backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    for i in range(cfg.backbone.num_blocks):
        for part in ("action_mlp.layer1", "action_adaln_modulation_self_attn.2", "mlp.layer1"):
            g = dict(policy.named_parameters())[f"blocks.{i}.{part}.weight"].grad
            assert g.abs().sum() > 0, (i, part)


def test_video_keys_match_a2world_layout():
    """Every A2World key except the action-conditioning and blacks modules is a policy key with
    the released shape; everything else in the policy is action-specific or an offset."""
    policy = build_policy(released_policy_config(), "meta")
    state = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    release = {k: s for k, s in released_layout("pretrained").items() if not k.startswith(DROPPED)}
    assert {k: state.get(k) for k in release} == release
    extra = set(state) - set(release)
    assert all("action" in k or k.endswith("_offset") for k in extra), sorted(extra)


def test_both_nets_share_the_video_stem_under_the_release_names():
    """A2World, A2World-sim and the policy are one VideoStem class: the stem's keys are the release's,
    with the released shapes, in all three."""
    nets = {
        "pretrained": build_dit(released_config("pretrained"), "meta"),
        "sim": build_dit(released_config("sim"), "meta"),
        "policy": build_policy(released_policy_config(), "meta"),
    }
    release = {k: s for k, s in released_layout("pretrained").items() if k.startswith(STEM)}
    assert release == {k: s for k, s in released_layout("sim").items() if k.startswith(STEM)}
    for name, net in nets.items():
        assert isinstance(net, VideoStem), name
        stem = {k: tuple(v.shape) for k, v in net.state_dict().items() if k.startswith(STEM)}
        assert stem == release, name


@pytest.mark.parametrize("ratio", [None, 1.0])
def test_released_size_parameter_count(ratio):
    """A2World's count minus the dropped modules plus the action branches, derived independently."""
    d, lora, hidden = 2048, 256, int(2048 * (4.0 if ratio is None else ratio))
    dropped = sum(math.prod(s) for k, s in released_layout("pretrained").items() if k.startswith(DROPPED))
    per_block = 3 * (d * lora + lora * 3 * d) + 2 * d * hidden
    outside = d + 3 * d + 15 * d + (d * lora + lora * 2 * d) + 14 * d
    expected = A2WORLD_PRETRAINED_PARAMS - dropped + 28 * per_block + outside
    policy = build_policy(released_policy_config(action_mlp_ratio=ratio), "meta")
    assert sum(p.numel() for p in policy.parameters()) == expected
    assert 2.5e9 < expected < 3.6e9


@pytest.mark.parametrize("bf16", [False, True])
def test_action_positions_share_video_time_axis(bf16):
    """Action 12·j (30 Hz) gets exactly the temporal angles of latent j (10 fps, 4 frames per
    latent); the spatial angles are those of the grid centre."""
    cfg = tiny_config("pretrained")
    rope = RotaryPosition3D(cfg)
    t, h, w = 6, 4, 4
    video = rope.angles(t, h, w, bf16=bf16).reshape(t, h, w, -1)
    # the fractional-position generator reproduces the integer table bit for bit
    grid = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"),
                       -1).reshape(-1, 3)
    same = rope_angles_at(rope, grid[:, 0].double(), grid[:, 1].double(), grid[:, 2].double(), bf16=bf16)
    assert torch.equal(same, video.reshape(t * h * w, -1))

    pc = tiny_policy_config(backbone_overrides=dict(quirks=QuirkOptions(rope_bf16_angles=bf16)))
    assert pc.actions_per_latent == 12
    rope_p = RotaryPosition3D(pc.backbone)
    act = action_angles(rope_p, pc.action_horizon, pc.actions_per_latent, h, w)
    dim_t = rope_split(cfg.head_dim)[0] // 2
    half = cfg.head_dim // 2
    for j in range(1, t):
        k = 12 * j - 1  # 0-based index of action 12·j
        assert torch.equal(act[k, :dim_t], video[j, 0, 0, :dim_t])
        assert torch.equal(act[k, half : half + dim_t], video[j, 0, 0, :dim_t])
    # between frames the temporal angle grows monotonically with time
    assert (act[1:, 0] > act[:-1, 0]).all()
    # spatial channels: centre (1.5, 1.5) of a 4×4 grid, the same for every action token
    centre = rope_angles_at(rope_p, torch.zeros(1), torch.full((1,), 1.5), torch.full((1,), 1.5))
    assert torch.equal(act[:, dim_t:half], centre[:, dim_t:half].expand(pc.action_horizon, -1))


def test_video_attends_actions_switch():
    cfg = tiny_policy_config(state_t=2)
    inputs = make_policy_inputs(cfg, batch=1)
    changed = dict(inputs, x_action=inputs["x_action"] + 1.0)
    with torch.no_grad():
        masked = make_policy(config=cfg.with_updates(video_attends_actions=False))
        v0, a0 = masked(**inputs)
        v1, a1 = masked(**changed)
        assert torch.equal(v0, v1)  # video never reads action tokens
        assert not torch.allclose(a0, a1)
        joint = make_policy(config=cfg)
        v0, _ = joint(**inputs)
        v1, _ = joint(**changed)
        assert not torch.allclose(v0, v1)
        # actions read the video in both settings
        _, a2 = masked(**dict(inputs, x_video=inputs["x_video"] * 0.5))
        assert not torch.allclose(a0, a2)


def test_action_timesteps_are_per_token():
    """Changing one action token's timestep changes that token's output (own AdaLN input)."""
    cfg = tiny_policy_config(state_t=2)
    policy = make_policy(config=cfg)
    inputs = make_policy_inputs(cfg, batch=1)
    t = inputs["t_action"].clone()
    t[0, 5] = 0.99
    with torch.no_grad():
        _, a0 = policy(**inputs)
        _, a1 = policy(**dict(inputs, t_action=t))
    assert not torch.allclose(a0[0, 5], a1[0, 5])


def test_config_validation_and_round_trip():
    cfg = tiny_policy_config()
    assert PolicyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="action horizon"):
        tiny_policy_config(action_horizon=50)
    with pytest.raises(ValueError, match="backbone.variant"):
        PolicyConfig(backbone=released_config("sim"))
    with pytest.raises(ValueError, match="max_prefix"):
        tiny_policy_config(max_prefix=60)
    with pytest.raises(ValueError, match="unknown PolicyConfig fields"):
        PolicyConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    "field, bad",
    [
        ("x_action", lambda i: i["x_action"][:, :-1]),
        ("t_action", lambda i: i["t_action"][:, :-1]),
        ("context", lambda i: i["context"][..., :-1]),
        ("t_video", lambda i: i["t_video"][:, :-1]),
        ("view_ids", lambda i: i["view_ids"][:, :-1]),
    ],
)
def test_forward_rejects_bad_shapes(field, bad):
    cfg = tiny_policy_config(state_t=2)
    policy = make_policy(config=cfg)
    inputs = make_policy_inputs(cfg, batch=1)
    with pytest.raises(ValueError, match=field):
        policy(**dict(inputs, **{field: bad(inputs)}))
