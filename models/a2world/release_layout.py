"""The released checkpoints' key layout, written out from a2world_release_facts.md §2.

Kept independent of the module code on purpose: tests compare the net's `state_dict()` with this
table, and `a2w model inspect` checks a checkpoint file against it.
"""

from __future__ import annotations

from a2world.config import Variant

Shape = tuple[int, ...]

CHECKPOINT_PREFIX = "net."
EXPECTED_KEY_COUNT: dict[str, int] = {"pretrained": 826, "sim": 836}
# Keys whose presence marks the A2World-sim (libero) file (§2, variant detection).
SIM_MARKER_PREFIX = "history_tokenizer."


def _common_outside() -> dict[str, Shape]:
    out: dict[str, Shape] = {"x_embedder_multiview.proj.1.weight": (2048, 100)}
    for n in range(1, 5):
        p = f"pos_embedder_options.n_cameras_{n}."
        out[p + "seq"] = (128,)
        out[p + "dim_spatial_range"] = (21,)
        out[p + "dim_temporal_range"] = (22,)
    out.update(
        {
            "t_embedder.1.linear_1.weight": (2048, 2048),
            "t_embedder.1.linear_2.weight": (6144, 2048),
            "t_embedding_norm.weight": (2048,),
            "final_layer.linear.weight": (64, 2048),
            "final_layer.adaln_modulation.1.weight": (256, 2048),
            "final_layer.adaln_modulation.2.weight": (4096, 256),
            "view_embeddings.weight": (4, 7),
        }
    )
    for name, width in (
        ("action_embedder_B_D_agi", 2048),
        ("action_embedder_B_3D_agi", 6144),
        ("action_to_crossattn_emb", 1024),
    ):
        out[f"{name}.fc1.weight"] = (8192, 280)
        out[f"{name}.fc1.bias"] = (8192,)
        out[f"{name}.fc2.weight"] = (width, 8192)
        out[f"{name}.fc2.bias"] = (width,)
    return out


def _pretrained_outside() -> dict[str, Shape]:
    p = "black_to_crossattn_emb."
    return {
        p + "conv_in.0.weight": (512, 16, 3, 3, 3),
        p + "conv_in.0.bias": (512,),
        p + "conv_in.2.weight": (1024, 512, 3, 3, 3),
        p + "conv_in.2.bias": (1024,),
        p + "token_norm.weight": (1024,),
        p + "token_norm.bias": (1024,),
        p + "token_mlp.0.weight": (2048, 1024),
        p + "token_mlp.0.bias": (2048,),
        p + "token_mlp.2.weight": (1024, 2048),
        p + "token_mlp.2.bias": (1024,),
    }


def _sim_outside() -> dict[str, Shape]:
    p = "history_tokenizer."
    return {
        p + "down.0.weight": (128, 16, 3, 3),
        p + "down.0.bias": (128,),
        p + "down.2.weight": (1024, 128, 1, 1),
        p + "down.2.bias": (1024,),
        p + "pose_mlp.0.weight": (256, 102),
        p + "pose_mlp.0.bias": (256,),
        p + "pose_mlp.2.weight": (1024, 256),
        p + "pose_mlp.2.bias": (1024,),
        p + "gate.0.weight": (1024, 6),
        p + "gate.0.bias": (1024,),
        p + "gate.2.weight": (1024, 1024),
        p + "gate.2.bias": (1024,),
        p + "pe2d_proj.weight": (1024, 128),
        p + "pe2d_proj.bias": (1024,),
        "mem_to_k.weight": (2048, 1024),
        "mem_to_v.weight": (2048, 1024),
        "vpb.mlp.0.weight": (128, 22),
        "vpb.mlp.0.bias": (128,),
        "vpb.mlp.2.weight": (1, 128),
        "vpb.mlp.2.bias": (1,),
    }


def _attention(prefix: str, kv_in: int, out_name: str) -> dict[str, Shape]:
    return {
        prefix + "q_proj.weight": (2048, 2048),
        prefix + "q_norm.weight": (128,),
        prefix + "k_proj.weight": (2048, kv_in),
        prefix + "k_norm.weight": (128,),
        prefix + "v_proj.weight": (2048, kv_in),
        prefix + f"{out_name}.weight": (2048, 2048),
    }


def _block(i: int, variant: Variant) -> dict[str, Shape]:
    p = f"blocks.{i}."
    out = _attention(p + "self_attn.", 2048, "output_proj")
    out.update(_attention(p + "cross_view_attn.", 2048, "output_proj"))
    out[p + "mlp.layer1.weight"] = (8192, 2048)
    out[p + "mlp.layer2.weight"] = (2048, 8192)
    for s in ("self_attn", "cross_attn", "mlp"):
        out[p + f"adaln_modulation_{s}.1.weight"] = (256, 2048)
        out[p + f"adaln_modulation_{s}.2.weight"] = (6144, 256)
    out[p + "layer_norm_cross_view_attn.weight"] = (2048,)
    out[p + "layer_norm_cross_view_attn.bias"] = (2048,)
    if variant == "pretrained":
        out.update(_attention(p + "cross_attn.", 1024, "output_proj"))
    else:
        out.update(_attention(p + "cross_biased_attn.core.", 1024, "out_proj"))
    return out


def released_layout(variant: Variant) -> dict[str, Shape]:
    """Key (without `net.`) -> shape for the released 2B checkpoint of `variant`."""
    out = _common_outside()
    out.update(_pretrained_outside() if variant == "pretrained" else _sim_outside())
    for i in range(28):
        out.update(_block(i, variant))
    return out


def detect_variant(keys: list[str] | set[str]) -> Variant:
    """'sim' when any key (with or without `net.`) starts with `history_tokenizer.`."""
    for k in keys:
        name = k[len(CHECKPOINT_PREFIX):] if k.startswith(CHECKPOINT_PREFIX) else k
        if name.startswith(SIM_MARKER_PREFIX):
            return "sim"
    return "pretrained"
