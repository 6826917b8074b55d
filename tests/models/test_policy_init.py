"""Building A2World-policy from A2World weights: key mapping, preserved video function, CLI."""

from __future__ import annotations

import pytest
import torch

from a2w.cli import main as a2w_main
from a2world.checkpoint import CheckpointMismatchError, save_checkpoint
from a2world.policy.checkpoint import load_policy, save_policy
from a2world.policy.config import tiny_policy_config
from a2world.policy.init import init_policy_from_state
from tests.models.support import LATENT_HW, make_net

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("variant", ["pretrained", "sim"])
def test_key_mapping(variant):
    net = make_net(variant)
    src = net.state_dict()
    policy, report = init_policy_from_state({"net." + k: v for k, v in src.items()}, tiny_policy_config())
    dst = policy.state_dict()
    nb = policy.config.backbone.num_blocks
    for i in range(nb):
        for s in ("self_attn", "cross_attn", "mlp"):
            for j in (1, 2):
                v = src[f"blocks.{i}.adaln_modulation_{s}.{j}.weight"]
                assert torch.equal(dst[f"blocks.{i}.adaln_modulation_{s}.{j}.weight"], v)
                assert torch.equal(dst[f"blocks.{i}.action_adaln_modulation_{s}.{j}.weight"], v)
        for j in (1, 2):
            assert torch.equal(dst[f"blocks.{i}.action_mlp.layer{j}.weight"], src[f"blocks.{i}.mlp.layer{j}.weight"])
        cross = "cross_attn" if variant == "pretrained" else "cross_biased_attn.core"
        out = "output_proj" if variant == "pretrained" else "out_proj"
        assert torch.equal(dst[f"blocks.{i}.cross_attn.output_proj.weight"], src[f"blocks.{i}.{cross}.{out}.weight"])
        assert torch.equal(dst[f"blocks.{i}.cross_attn.k_proj.weight"], src[f"blocks.{i}.{cross}.k_proj.weight"])
        assert torch.equal(dst[f"blocks.{i}.self_attn.q_proj.weight"], src[f"blocks.{i}.self_attn.q_proj.weight"])
    for k in ("x_embedder_multiview.proj.1.weight", "t_embedder.1.linear_2.weight", "view_embeddings.weight",
              "final_layer.linear.weight", "t_embedding_norm.weight"):
        assert torch.equal(dst[k], src[k])
    for j in (1, 2):
        assert torch.equal(dst[f"action_final_layer.adaln_modulation.{j}.weight"],
                           src[f"final_layer.adaln_modulation.{j}.weight"])
    # offsets = the A2World action MLPs run on an all-zero chunk
    zero = torch.zeros(1, 1, net.config.action_dim)
    with torch.no_grad():
        assert torch.allclose(dst["t_embedding_offset"], net.action_embedder_B_D_agi(zero)[0, 0], atol=1e-6)
        assert torch.allclose(dst["adaln_lora_offset"], net.action_embedder_B_3D_agi(zero)[0, 0], atol=1e-6)
    assert torch.count_nonzero(dst["action_final_layer.linear.weight"]) == 0
    assert torch.equal(dst["action_std"], torch.ones(14))
    assert set(report.fresh) == {"action_x_embedder.weight", "action_final_layer.linear.weight", "action_mean",
                                 "action_std"}
    assert any(k.startswith("action_to_crossattn_emb.") for k in report.dropped)
    assert len(report.copied) + len(report.derived) + len(report.fresh) + 12 == len(dst)  # 12 RoPE buffers


def test_initialised_policy_reproduces_a2world_video_at_zero_action():
    """With video rows masked off the action tokens and A2World's own (constant) cross-attention
    token as the context, the initialised policy's video velocity is A2World's at a zero action."""
    net = make_net("pretrained", seed=3)
    cfg = tiny_policy_config(video_attends_actions=False)
    policy, _ = init_policy_from_state(net.state_dict(), cfg)
    g = torch.Generator().manual_seed(4)
    views = (2, 0, 1)
    vt = len(views) * cfg.latent_frames
    x = torch.randn(1, 16, vt, LATENT_HW, LATENT_HW, generator=g)
    t = torch.rand(1, vt, generator=g)
    mask = torch.zeros(1, len(views), cfg.latent_frames)
    mask[:, :, 0] = 1
    mask = mask.reshape(1, vt)
    view_ids = torch.tensor([views])
    zero = torch.zeros(1, net.config.action_chunk, net.config.action_width)
    with torch.no_grad():
        ref = net(x, t, view_ids, mask, zero)
        ctx = net.action_to_crossattn_emb(zero.reshape(1, 1, -1))  # (1, 1, ctx)
        ta = cfg.action_horizon
        got, _ = policy(x, t, view_ids, mask, torch.randn(1, ta, 14, generator=g), torch.rand(1, ta, generator=g),
                        torch.zeros(1, ta), ctx)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_cross_attention_from_another_checkpoint():
    net = make_net("pretrained", seed=0)
    other = make_net("pretrained", seed=7).state_dict()
    cross = {"net." + k: v for k, v in other.items() if ".cross_attn." in k}
    policy, report = init_policy_from_state(net.state_dict(), tiny_policy_config(), cross,
                                            cross_attention_name="cosmos")
    dst = policy.state_dict()
    assert torch.equal(dst["blocks.1.cross_attn.v_proj.weight"], other["blocks.1.cross_attn.v_proj.weight"])
    assert not torch.equal(dst["blocks.1.cross_attn.v_proj.weight"],
                           net.state_dict()["blocks.1.cross_attn.v_proj.weight"])
    assert report.cross_attention_from == "cosmos"
    del cross["net.blocks.0.cross_attn.q_norm.weight"]
    with pytest.raises(ValueError, match="blocks.0.cross_attn.q_norm.weight"):
        init_policy_from_state(net.state_dict(), tiny_policy_config(), cross)


def test_init_rejects_mismatching_a2world_state():
    state = make_net("pretrained").state_dict()
    del state["blocks.0.mlp.layer1.weight"]
    with pytest.raises(CheckpointMismatchError, match="blocks.0.mlp.layer1.weight"):
        init_policy_from_state(state, tiny_policy_config())
    wider = make_net("pretrained", model_channels=192, num_heads=3).state_dict()
    with pytest.raises(CheckpointMismatchError, match="mis-shaped"):
        init_policy_from_state(wider, tiny_policy_config())


def test_narrow_action_mlp_keeps_first_hidden_units():
    net = make_net("pretrained")
    policy, _ = init_policy_from_state(net.state_dict(), tiny_policy_config(action_mlp_ratio=1.0))
    src, dst = net.state_dict(), policy.state_dict()
    assert dst["blocks.0.action_mlp.layer1.weight"].shape == (128, 128)
    assert torch.equal(dst["blocks.0.action_mlp.layer1.weight"], src["blocks.0.mlp.layer1.weight"][:128])
    assert torch.equal(dst["blocks.0.action_mlp.layer2.weight"], src["blocks.0.mlp.layer2.weight"][:, :128])


def test_cli_init_and_strict_round_trip(tmp_path, capsys):
    net = make_net("pretrained", seed=5, state_t=6)
    src = save_checkpoint(net, tmp_path / "a2world")
    for argv, out in (
        (["policy", "init", "--from", str(src), "--out", str(tmp_path / "p1"), "--max-prefix", "10"], "p1"),
        (["model", "init-policy", "--from", str(src), "--out", str(tmp_path / "p2")], "p2"),
    ):
        assert a2w_main(argv) == 0
        policy = load_policy(tmp_path / out)
        assert torch.equal(policy.state_dict()["blocks.1.mlp.layer2.weight"],
                           net.state_dict()["blocks.1.mlp.layer2.weight"])
    assert load_policy(tmp_path / "p1").config.max_prefix == 10
    assert "copied" in capsys.readouterr().out
    assert a2w_main(["policy", "info", str(tmp_path / "p1")]) == 0
    assert "parameters" in capsys.readouterr().out

    # a saved policy reloads exactly; a tampered file is refused with the key named
    policy = load_policy(tmp_path / "p1")
    policy.set_action_stats(torch.full((14,), 0.1), torch.full((14,), 2.0))
    save_policy(policy, tmp_path / "p3")
    again = load_policy(tmp_path / "p3")
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), again.state_dict().values()))
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "p3" / "model.safetensors"))
    state.pop("blocks.0.action_mlp.layer1.weight")
    save_file(state, str(tmp_path / "p3" / "model.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="action_mlp.layer1"):
        load_policy(tmp_path / "p3")
