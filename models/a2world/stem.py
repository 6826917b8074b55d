"""The video stem shared by A2World (`a2world.dit`) and A2World-policy (`a2world.policy.model`).

Both nets turn a multi-view latent into tokens, embed the per-frame timesteps and turn the last
tokens back into a video velocity in the same way; they differ only in what sits in between
(blocks, action conditioning). The stem's modules are attributes of the net itself rather than a
submodule, so their checkpoint keys keep the release's names (a2world_release_facts.md §2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from a2world.attention import RMSNorm
from a2world.conditioning import FinalLayer, PatchEmbed, TimestepEmbedding, Timesteps, unpatchify
from a2world.config import DiTConfig
from a2world.rope import MultiCameraRope

# (latent frames, token rows, token columns) of a patchified multi-view latent
TokenGrid = tuple[int, int, int]


def video_final_layer(config: DiTConfig) -> FinalLayer:
    """`final_layer`, which each net builds after its blocks: construction order sets the seeded
    initial weights, and the release's order puts it last."""
    return FinalLayer(config.model_channels, config.adaln_lora_dim, config.patch_out_features, config.norm_eps)


class VideoStem(nn.Module):
    """Input layers (`x_embedder_multiview`, `pos_embedder_options`, `t_embedder`,
    `t_embedding_norm`, `view_embeddings`) and, through `final_layer`, the video output."""

    final_layer: FinalLayer

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.video_config = config
        d = config.model_channels
        self.x_embedder_multiview = PatchEmbed(config.patch_in_features, d, config.patch_spatial, config.patch_temporal)
        self.pos_embedder_options = MultiCameraRope(config)
        self.t_embedder = nn.Sequential(Timesteps(d), TimestepEmbedding(d))
        self.t_embedding_norm = RMSNorm(d, config.norm_eps)
        self.view_embeddings = nn.Embedding(config.n_cameras_emb, config.view_condition_dim)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder_multiview.proj[1].weight.dtype

    def _assemble_input(
        self,
        x: torch.Tensor,
        view_ids: torch.Tensor,
        condition_mask: torch.Tensor,
        padding_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """[latent 16 | cond mask 1 | padding mask 1 | view emb 7] along channels (§1.2)."""
        b, _, vt, h, w = x.shape
        frames = vt // view_ids.shape[1]
        if condition_mask.dim() == 2:  # per-frame (B, V·T)
            condition_mask = condition_mask[:, None, :, None, None].expand(b, 1, vt, h, w)
        if padding_mask is None:
            padding_mask = x.new_zeros(b, 1, h, w)
        elif padding_mask.shape[-2:] != (h, w):
            padding_mask = F.interpolate(padding_mask.float(), size=(h, w), mode="nearest")
        padding = padding_mask[:, :, None].expand(b, 1, vt, h, w)
        view_emb = self.view_embeddings(view_ids.clamp(max=self.video_config.n_cameras_emb - 1))
        view_emb = view_emb.repeat_interleave(frames, dim=1)  # (B, V·T, 7)
        view_emb = view_emb.permute(0, 2, 1)[..., None, None].expand(-1, -1, vt, h, w)
        parts = [x, condition_mask, padding, view_emb]
        return torch.cat([p.to(self.dtype) for p in parts], dim=1)

    def video_tokens(
        self,
        x: torch.Tensor,
        view_ids: torch.Tensor,
        condition_mask: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, TokenGrid]:
        """x (B, C, V·T, h, w) view-major -> tokens (B, F, S, D) and their grid (F, rows, columns).

        condition_mask: (B, V·T) per frame or (B, 1, V·T, h, w); padding_mask: (B, 1, H, W) or
        None (no padding), resized to the latent grid.
        """
        tokens = self.x_embedder_multiview(self._assemble_input(x, view_ids, condition_mask, padding_mask))
        b, f, hp, wp, d = tokens.shape
        return tokens.reshape(b, f, hp * wp, d), (f, hp, wp)

    def embed_time(
        self, timesteps: torch.Tensor, emb_offset: torch.Tensor, lora_offset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token network time (B, N) -> (AdaLN embedding (B, N, D), LoRA vector (B, N, 3D)).

        The offsets are added before the norm and to the LoRA vector: A2World's action MLPs, the
        policy's learned constants.
        """
        if self.video_config.quirks.timestep_bf16:
            timesteps = timesteps.to(torch.bfloat16)  # §1.4: coarse near 1 (step 0.0039)
        sinusoid = self.t_embedder[0](timesteps).to(self.dtype)
        sinusoid, lora = self.t_embedder[1](sinusoid)
        return self.t_embedding_norm(sinusoid + emb_offset), lora + lora_offset

    def video_output(
        self, tokens: torch.Tensor, t_emb: torch.Tensor, lora: torch.Tensor, grid: TokenGrid
    ) -> torch.Tensor:
        """Final layer and unpatchify: tokens (B, F, S, D) -> velocity (B, C, V·T, h, w)."""
        f, hp, wp = grid
        cfg = self.video_config
        out = self.final_layer(tokens, t_emb, lora).reshape(tokens.shape[0], f, hp, wp, -1)
        return unpatchify(out, cfg.patch_spatial, cfg.patch_temporal, cfg.latent_channels)
