"""MoE-like video-action block (paper §3.3, Fig. 2 d.4) built on the A2World `DiTBlock`.

The video path is the backbone block unchanged (same modules, same key names). Action tokens add
their own AdaLN modulations and MLP (`action_*`), share the block's self-attention (one joint
attention over [video | action] tokens) and its instruction cross-attention, and skip the
cross-view attention, which is defined per view and per latent frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2world.attention import SelfAttention, merge_heads
from a2world.blocks import BlockInputs, DiTBlock, FeedForward
from a2world.conditioning import adaln_modulation
from a2world.policy.config import PolicyConfig
from a2world.rope import apply_rope

# The block's three AdaLN sublayers; each has an action twin `action_adaln_modulation_<name>`.
SUBLAYERS: tuple[str, ...] = ("self_attn", "cross_attn", "mlp")


class ActionInputs:
    """Per-forward action-stream inputs: per-token AdaLN embeddings and the joint attention mask."""

    def __init__(self, t_emb: torch.Tensor, lora: torch.Tensor, attn_mask: torch.Tensor | None) -> None:
        self.t_emb = t_emb  # (B, Ta, D): one timestep embedding per action token
        self.lora = lora  # (B, Ta, 3D)
        self.attn_mask = attn_mask  # (N, N) bool over [video | action] tokens, or None (all-to-all)


def joint_self_attention(
    attn: SelfAttention, x: torch.Tensor, angles: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """The backbone's self-attention over an arbitrary token set with an optional boolean mask."""
    q = apply_rope(attn.queries(x), angles)
    k, v = attn.keys_values(x)
    k = apply_rope(k, angles)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return attn.out(merge_heads(out))


class PolicyBlock(DiTBlock):
    def __init__(self, config: PolicyConfig) -> None:
        super().__init__(config.backbone)
        bb = config.backbone
        d, lora = bb.model_channels, bb.adaln_lora_dim
        self.action_adaln_modulation_self_attn = adaln_modulation(d, lora, 3)
        self.action_adaln_modulation_cross_attn = adaln_modulation(d, lora, 3)
        self.action_adaln_modulation_mlp = adaln_modulation(d, lora, 3)
        self.action_mlp = FeedForward(d, config.action_mlp_hidden)

    def modulate_actions(
        self, x: torch.Tensor, path: nn.Module, act: ActionInputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, Ta, D) -> (LN(x)·(1+scale)+shift, gate), modulation per action token."""
        shift, scale, gate = (path(act.t_emb) + act.lora).chunk(3, dim=-1)
        return self.norm(x) * (1 + scale) + shift, gate

    def forward_joint(
        self, xv: torch.Tensor, xa: torch.Tensor, inp: BlockInputs, act: ActionInputs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """xv (B, F, S, D) video tokens, xa (B, Ta, D) action tokens -> both updated."""
        b, f, s, d = xv.shape
        nv = f * s

        hv, gv = self.modulate(xv, self.adaln_modulation_self_attn, inp)
        ha, ga = self.modulate_actions(xa, self.action_adaln_modulation_self_attn, act)
        joint = joint_self_attention(
            self.self_attn, torch.cat([hv.reshape(b, nv, d), ha], dim=1), inp.angles, act.attn_mask
        )
        xv = xv + gv * joint[:, :nv].reshape(b, f, s, d)
        xa = xa + ga * joint[:, nv:]

        h = self.layer_norm_cross_view_attn(xv)
        xv = xv + self.cross_view_attn(h.reshape(b, nv, d), inp.n_views, inp.frames).reshape(b, f, s, d)

        hv, gv = self.modulate(xv, self.adaln_modulation_cross_attn, inp)
        xv = xv + gv * self.cross_attn(hv.reshape(b, nv, d), inp.context).reshape(b, f, s, d)
        ha, ga = self.modulate_actions(xa, self.action_adaln_modulation_cross_attn, act)
        # The instruction is duplicated per view; the action stream reads one copy.
        xa = xa + ga * self.cross_attn(ha, inp.context[:, :1])

        hv, gv = self.modulate(xv, self.adaln_modulation_mlp, inp)
        xv = xv + gv * self.mlp(hv)
        ha, ga = self.modulate_actions(xa, self.action_adaln_modulation_mlp, act)
        xa = xa + ga * self.action_mlp(ha)
        return xv, xa
