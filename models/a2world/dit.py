"""The multi-view action-conditioned DiT: A2World ("pretrained") and A2World-sim ("sim").

Attribute names follow the released checkpoints' keys (minus the `net.` prefix), so a state
dict loads without renaming (a2world_release_facts.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from a2world.blocks import BlockInputs, DiTBlock
from a2world.conditioning import BlackEncoder, Mlp
from a2world.config import DiTConfig
from a2world.history_modules import HistoryTokenizer, ViewPairBias
from a2world.stem import VideoStem, video_final_layer


@dataclass
class HistoryInputs:
    """A2World-sim conditioning: history latents and the 22-D action-path features.

    latent: (B, C, V·L, h, w), view-major, L latent frames per view (5 in the release).
    state: (B, future targets, history slots, 22), e.g. (1, 20, 20, 22).
    """

    latent: torch.Tensor
    state: torch.Tensor


class A2WorldDiT(VideoStem):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__(config)
        self.config = config
        d = config.model_channels
        ctx = config.crossattn_emb_channels
        hidden = config.action_hidden_dim
        self.action_embedder_B_D_agi = Mlp(config.action_dim, hidden, d)
        self.action_embedder_B_3D_agi = Mlp(config.action_dim, hidden, 3 * d)
        # Stored in both checkpoints; only the pretrained net uses it (§1.6).
        self.action_to_crossattn_emb = Mlp(config.action_dim, hidden, ctx)
        if config.use_black:
            self.black_to_crossattn_emb = BlackEncoder(config.latent_channels, ctx, config.black_pool)
        if config.use_history:
            self.history_tokenizer = HistoryTokenizer(
                config.latent_channels,
                ctx,
                config.history_conv_channels,
                config.history_pe_dim,
                config.history_pose_in,
                config.history_pose_hidden,
                config.history_gate_in,
                bf16_rounding=config.quirks.history_bf16_rounding,
            )
            self.mem_to_k = nn.Linear(ctx, d, bias=False)
            self.mem_to_v = nn.Linear(ctx, d, bias=False)
            self.vpb = ViewPairBias(config.vpb_features, config.vpb_hidden, config.vpb_clamp)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.num_blocks))
        self.final_layer = video_final_layer(config)

    # ---------------------------------------------------------------- inputs
    def _embed_time_and_action(
        self, timesteps: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (t_emb (B, V·T, D), LoRA (B, V·T, 3D), flattened actions (B, 1, A))."""
        b = actions.shape[0]
        # §1.4: the 20×14 chunk is flattened time-major to 280 values.
        act = actions.reshape(b, 1, -1).to(self.dtype)
        if act.shape[-1] != self.config.action_dim:
            raise ValueError(
                f"actions must hold {self.config.action_dim} values per sample "
                f"({self.config.action_chunk}×{self.config.action_width}), got {act.shape[-1]}"
            )
        t_emb, lora = self.embed_time(
            timesteps, self.action_embedder_B_D_agi(act), self.action_embedder_B_3D_agi(act)
        )
        return t_emb, lora, act

    def _history_context(
        self, history: HistoryInputs, n_views: int, frames: int, tokens_per_frame: int, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.config
        latent = history.latent
        if cfg.quirks.history_bf16_rounding:
            latent = latent.to(torch.bfloat16)  # §4.3: `history.to(bfloat16)` in any net dtype
        latent = latent.to(self.dtype)
        if latent.shape[2] % n_views:
            raise ValueError(
                f"history latent frames ({latent.shape[2]}) must be a multiple of n_views ({n_views})"
            )
        hist_frames = latent.shape[2] // n_views
        tokens = self.history_tokenizer(latent)  # (B, V·L·Sh, ctx)
        hist_tokens_per_frame = tokens.shape[1] // latent.shape[2]
        context = tokens.reshape(batch, n_views, -1, tokens.shape[-1])
        memory = (self.mem_to_k(tokens), self.mem_to_v(tokens))
        bias = self.vpb(
            history.state.to(self.dtype),
            frames,
            hist_frames,
            tokens_per_frame,
            hist_tokens_per_frame,
            swapped_axes=cfg.quirks.vpb_swapped_axes,
        )
        # Attention rows are view-major: row r = v·B + b.
        rows = torch.arange(n_views * batch, device=bias.device)
        if cfg.quirks.vpb_batch_mixing:
            sample = rows // n_views  # §4.4 batch bug: the bias is expanded sample-major
        else:
            sample = rows % batch
        return context, bias[sample], memory

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        view_ids: torch.Tensor,
        condition_mask: torch.Tensor,
        actions: torch.Tensor,
        history: HistoryInputs | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the velocity for a multi-view latent.

        x: (B, C, V·T, h, w) view-major; timesteps: (B, V·T) network time t = σ/(1+σ);
        view_ids: (B, V) distinct ids in 0..3; condition_mask: (B, V·T) or (B, 1, V·T, h, w);
        actions: (B, 20, 14) or (B, 280); history: required by the sim variant.
        Returns (B, C, V·T, h, w) in the net's dtype.
        """
        cfg = self.config
        if x.dim() != 5 or x.shape[1] != cfg.latent_channels:
            raise ValueError(f"x must be (B, {cfg.latent_channels}, V·T, h, w), got {tuple(x.shape)}")
        b, _, vt, h, w = x.shape
        if view_ids.dim() != 2 or view_ids.shape[0] != b:
            raise ValueError(f"view_ids must be (B, V), got {tuple(view_ids.shape)}")
        n_views = view_ids.shape[1]
        if vt % n_views:
            raise ValueError(f"latent frames ({vt}) must be a multiple of n_views ({n_views})")
        if timesteps.shape != (b, vt):
            raise ValueError(f"timesteps must be (B, V·T) = {(b, vt)}, got {tuple(timesteps.shape)}")
        frames = vt // n_views

        tokens, grid = self.video_tokens(x, view_ids, condition_mask, padding_mask)
        _, hp, wp = grid
        t_emb, lora, act = self._embed_time_and_action(timesteps, actions)
        angles = self.pos_embedder_options.angles(n_views, frames, hp, wp, device=x.device)

        memory = None
        bias = None
        if cfg.use_history:
            if history is None:
                # §4.5: the sim checkpoint has no working no-history mode.
                raise ValueError("history is required by the sim (A2World-sim) variant")
            context, bias, memory = self._history_context(history, n_views, frames, hp * wp, b)
        else:
            # §1.6: zero text context + one action vector broadcast over every token; all context
            # tokens are identical, so a single token gives the same attention output.
            context = self.action_to_crossattn_emb(act)[:, None].expand(b, n_views, 1, -1)

        inp = BlockInputs(t_emb, lora, angles, n_views, frames, context, bias, memory)
        for block in self.blocks:
            tokens = block(tokens, inp)
        return self.video_output(tokens, t_emb, lora, grid)


def build_dit(config: DiTConfig, device: torch.device | str | None = None) -> A2WorldDiT:
    """Build the net, e.g. on the `meta` device to list keys without allocating memory."""
    with torch.device(device or "cpu"):
        return A2WorldDiT(config)
