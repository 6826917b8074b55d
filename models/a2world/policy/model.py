"""A2World-policy: joint video-action denoiser p(o_{t+1:t+k}, a_{t+1:t+k} | o_t, l) (paper §3.3).

The video path is A2World's (the shared `a2world.stem.VideoStem` and the backbone's blocks, same key
names, so weights map one to one); action tokens join it through MoE-like blocks
(`a2world.policy.blocks`). Decisions the paper leaves open:

- Action tokens: one token per 30 Hz step, a bias-free linear of [normalised 14-D action | prefix flag].
- RoPE time: action k sits at fractional latent index k/12 (k / actions_per_latent) under the video's fps
  modulation, so it shares the angle of the latent frame ending at that instant; spatially it sits at the
  token-grid centre.
- Attention: one joint self-attention over [video | action]; actions attend to everything, and video tokens
  also attend to action tokens (`video_attends_actions`, default True) as A2World's video was
  action-conditioned.
- Timesteps: one per token; video per latent frame as in A2World, every action token its own (σ_a, or
  σ_cond for clean prefix tokens).
- Timestep embedder and its LoRA vector are shared; each block has separate AdaLN modulations and an MLP for actions.
- Instruction: T5 token embeddings duplicated per view as each view's cross-attention context; action
  tokens read one copy through the same cross-attention with their own AdaLN.
- A2World's action-conditioning MLPs are dropped; their output for a zero action becomes learnable offsets
  on t_emb and the LoRA vector, so the initialised video path computes A2World at zero action.
- Action head: the final layer's AdaLN (copied from the video final layer) then a linear D → 14.
- Actions are normalised per dimension by stored `action_mean`/`action_std` buffers, since σ_data = 1
  assumes unit scale.
"""

from __future__ import annotations

import torch
from torch import nn

from a2world.blocks import BlockInputs
from a2world.conditioning import FinalLayer
from a2world.policy.blocks import ActionInputs, PolicyBlock
from a2world.policy.config import PolicyConfig
from a2world.policy.positions import action_angles
from a2world.stem import VideoStem, video_final_layer


class A2WorldPolicy(VideoStem):
    def __init__(self, config: PolicyConfig) -> None:
        super().__init__(config.backbone)
        self.config = config
        bb = config.backbone
        d = bb.model_channels
        self.t_embedding_offset = nn.Parameter(torch.zeros(d))
        self.adaln_lora_offset = nn.Parameter(torch.zeros(3 * d))
        self.action_x_embedder = nn.Linear(config.action_width + 1, d, bias=False)
        self.blocks = nn.ModuleList(PolicyBlock(config) for _ in range(bb.num_blocks))
        self.final_layer = video_final_layer(bb)
        self.action_final_layer = FinalLayer(d, bb.adaln_lora_dim, config.action_width, bb.norm_eps)
        self.register_buffer("action_mean", torch.zeros(config.action_width))
        self.register_buffer("action_std", torch.ones(config.action_width))

    # ---------------------------------------------------------------- normalisation
    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return (actions - self.action_mean.to(actions)) / self.action_std.to(actions)

    def denormalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        return actions * self.action_std.to(actions) + self.action_mean.to(actions)

    def set_action_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        if mean.shape != self.action_mean.shape or std.shape != self.action_std.shape:
            raise ValueError(f"action stats must be ({self.config.action_width},), "
                             f"got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not bool((std > 0).all()) or not bool(torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("action_std must be positive and the stats finite")
        self.action_mean.copy_(mean)
        self.action_std.copy_(std)

    # ---------------------------------------------------------------- geometry
    def angles(
        self, n_views: int, frames: int, grid_h: int, grid_w: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """RoPE angles (V·T·S + Ta, head_dim) for [video | action] tokens."""
        video = self.pos_embedder_options.angles(n_views, frames, grid_h, grid_w, device=device)
        rope = self.pos_embedder_options[f"n_cameras_{n_views}"]
        cfg = self.config
        act = action_angles(rope, cfg.action_horizon, cfg.actions_per_latent, grid_h, grid_w, device=device)
        return torch.cat([video, act], dim=0)

    def attention_mask(self, n_video: int, device: torch.device | str | None = None) -> torch.Tensor | None:
        """None (all-to-all) or a bool mask keeping video rows off action columns."""
        if self.config.video_attends_actions:
            return None
        n = n_video + self.config.action_horizon
        mask = torch.ones(n, n, dtype=torch.bool, device=device)
        mask[:n_video, n_video:] = False
        return mask

    # ---------------------------------------------------------------- inputs
    def _check(self, x_video: torch.Tensor, t_video: torch.Tensor, view_ids: torch.Tensor,
               frame_mask: torch.Tensor, x_action: torch.Tensor, t_action: torch.Tensor,
               prefix_mask: torch.Tensor, context: torch.Tensor) -> None:
        cfg, bb = self.config, self.config.backbone
        if x_video.dim() != 5 or x_video.shape[1] != bb.latent_channels:
            raise ValueError(f"x_video must be (B, {bb.latent_channels}, V·T, h, w), got {tuple(x_video.shape)}")
        b, vt = x_video.shape[0], x_video.shape[2]
        if view_ids.dim() != 2 or view_ids.shape[0] != b or vt != view_ids.shape[1] * cfg.latent_frames:
            raise ValueError(
                f"view_ids must be (B, V) with V·{cfg.latent_frames} = {vt} latent frames, got {tuple(view_ids.shape)}"
            )
        for name, t in (("t_video", t_video), ("frame_mask", frame_mask)):
            if t.shape != (b, vt):
                raise ValueError(f"{name} must be (B, V·T) = {(b, vt)}, got {tuple(t.shape)}")
        ta = (b, cfg.action_horizon)
        if x_action.shape != (*ta, cfg.action_width):
            raise ValueError(f"x_action must be {(*ta, cfg.action_width)}, got {tuple(x_action.shape)}")
        for name, t in (("t_action", t_action), ("prefix_mask", prefix_mask)):
            if t.shape != ta:
                raise ValueError(f"{name} must be (B, Ta) = {ta}, got {tuple(t.shape)}")
        if context.dim() != 3 or context.shape[0] != b or context.shape[2] != cfg.context_dim:
            raise ValueError(f"context must be (B, L, {cfg.context_dim}), got {tuple(context.shape)}")

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        x_video: torch.Tensor,
        t_video: torch.Tensor,
        view_ids: torch.Tensor,
        frame_mask: torch.Tensor,
        x_action: torch.Tensor,
        t_action: torch.Tensor,
        prefix_mask: torch.Tensor,
        context: torch.Tensor,
        angles: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Velocities for the video latent and the action sequence (already preconditioned inputs).

        x_video: (B, C, V·T, h, w) view-major; t_video: (B, V·T) network time σ/(1+σ);
        view_ids: (B, V); frame_mask: (B, V·T) 1 on conditioning latents; x_action: (B, Ta, 14);
        t_action, prefix_mask: (B, Ta); context: (B, L, ctx) instruction embeddings (zeros =
        unconditional); angles: optional precomputed `self.angles(...)` (fixed for export).
        Returns ((B, C, V·T, h, w), (B, Ta, 14)) in the net's dtype.
        """
        self._check(x_video, t_video, view_ids, frame_mask, x_action, t_action, prefix_mask, context)
        b, _, vt, _, _ = x_video.shape
        n_views = view_ids.shape[1]
        frames = vt // n_views

        tokens, grid = self.video_tokens(x_video, view_ids, frame_mask)
        f, hp, wp = grid
        xa = self.action_x_embedder(torch.cat([x_action, prefix_mask[..., None]], dim=-1).to(self.dtype))

        timesteps = torch.cat([t_video, t_action], dim=1)
        t_emb, lora = self.embed_time(timesteps, self.t_embedding_offset, self.adaln_lora_offset)
        if angles is None:
            angles = self.angles(n_views, frames, hp, wp, device=x_video.device)
        ctx = context.to(self.dtype)[:, None].expand(b, n_views, -1, -1)
        inp = BlockInputs(t_emb[:, :vt], lora[:, :vt], angles, n_views, frames, ctx)
        act = ActionInputs(t_emb[:, vt:], lora[:, vt:], self.attention_mask(f * hp * wp, x_video.device))
        for block in self.blocks:
            tokens, xa = block.forward_joint(tokens, xa, inp, act)

        out_v = self.video_output(tokens, inp.t_emb, inp.lora, grid)
        out_a = self.action_final_layer(xa[:, :, None], act.t_emb, act.lora)[:, :, 0]
        return out_v, out_a


def build_policy(config: PolicyConfig, device: torch.device | str | None = None) -> A2WorldPolicy:
    """Build the policy, e.g. on `meta` to count parameters of the released size."""
    with torch.device(device or "cpu"):
        return A2WorldPolicy(config)


def init_action_head_(policy: A2WorldPolicy, std: float = 0.02) -> None:
    """Fresh action-only weights: small input projection, zero output head (predicts v = 0 first)."""
    nn.init.normal_(policy.action_x_embedder.weight, std=std)
    nn.init.zeros_(policy.action_final_layer.linear.weight)

