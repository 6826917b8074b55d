"""Building blocks of the Wan2.1 causal 3D VAE.

Tensors are (B, C, T, H, W). Every temporal layer takes an optional :class:`StreamCache`:
without one the layer sees the whole sequence at once (single pass); with one it sees the next
temporal chunk and keeps what later chunks need. Both give the same result for any chunking,
because the streaming state holds exactly the frames a single pass would look back at.
Attribute names and ``nn.Sequential`` indices are the released state-dict names
(wan_vae_facts.md §1.2).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a2world.vae.cache import StreamCache


def _fold_time(x: Tensor) -> Tensor:
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def _unfold_time(x: Tensor, b: int) -> Tensor:
    bt, c, h, w = x.shape
    return x.reshape(b, bt // b, c, h, w).permute(0, 2, 1, 3, 4)


@functools.lru_cache(maxsize=None)
def onednn_bf16_supported() -> bool:
    """Whether oneDNN has a bf16 convolution kernel for this CPU.

    It needs AVX-512 BW/VL/DQ or AVX-NE-CONVERT; on an AVX2-only CPU the direct call raises
    instead of falling back. Probed once by running the call itself on a tiny input, which is
    exactly the capability the fast path uses.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    x = torch.zeros(1, 1, 1, 1, 1, dtype=torch.bfloat16)
    try:
        torch.ops.aten.mkldnn_convolution(x, x.clone(), None, [0, 0, 0], [1, 1, 1], [1, 1, 1], 1)
    except RuntimeError:
        return False
    return True


def _onednn_dtype(x: Tensor, weight: Tensor) -> torch.dtype | None:
    """The dtype to run the oneDNN conv in, called directly on CPU; None for PyTorch's dispatch.

    PyTorch sends batch-1 convs with few channels·frames·rows to its reference kernel, which is
    several times slower; short streaming chunks and the tiny configuration hit that case. A bf16
    conv on a CPU without oneDNN's bf16 kernel runs in fp32 and is rounded back: exact on the
    bf16 inputs, like the kernel's fp32 accumulation, where PyTorch's own bf16 conv is 170-370x
    slower than fp32 on such a CPU. Inference only: the direct call is kept out of autograd.
    """
    if (x.device.type != "cpu" or not torch.backends.mkldnn.is_available()
            or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        return None
    if x.dtype == torch.float32:
        return torch.float32
    if x.dtype == torch.bfloat16:
        return torch.bfloat16 if onednn_bf16_supported() else torch.float32
    return None


class CausalConv3d(nn.Conv3d):
    """Conv3d whose temporal padding is all in front: output t sees inputs t-2..t.

    The constructor's symmetric ``padding=(pt, ph, pw)`` becomes an explicit zero pad of 2·pt
    frames in front and ph/pw on both spatial sides (wan_vae_facts.md §2.1). When streaming, the
    last 2·pt input frames of earlier chunks replace that many zero frames.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        pt, ph, pw = (padding,) * 3 if isinstance(padding, int) else padding
        self.front_frames = 2 * pt
        self.spatial_pad = (pw, pw, ph, ph)

    def _empty_output(self, x: Tensor) -> Tensor:
        """The (B, C_out, 0, H', W') result for an input with too few frames; x is unpadded."""
        b, _, _, h, w = x.shape
        pw, _, ph, _ = self.spatial_pad
        h_out = (h + 2 * ph - self.kernel_size[1]) // self.stride[1] + 1
        w_out = (w + 2 * pw - self.kernel_size[2]) // self.stride[2] + 1
        return x.new_empty(b, self.out_channels, 0, h_out, w_out)

    def forward(self, x: Tensor, cache: StreamCache | None = None) -> Tensor:  # type: ignore[override]
        front = self.front_frames
        if front > 0 and cache is not None:
            if x.shape[2] == 0:
                return self._empty_output(x)
            previous = cache.get(self)
            if previous is not None:
                x = torch.cat([previous, x], dim=2)
                front -= previous.shape[2]
            # clone so the cache does not pin the whole chunk in memory
            cache.put(self, x[:, :, -self.front_frames :].clone())
        if x.shape[2] + front < self.kernel_size[0]:
            return self._empty_output(x)
        pw, pw2, ph, ph2 = self.spatial_pad
        if front or pw or ph:
            x = F.pad(x, (pw, pw2, ph, ph2, front, 0))
        dtype = _onednn_dtype(x, self.weight)
        if dtype is None:
            return super().forward(x)
        bias = None if self.bias is None else self.bias.to(dtype)
        y = torch.ops.aten.mkldnn_convolution(
            x.to(dtype), self.weight.to(dtype), bias, [0, 0, 0], list(self.stride), list(self.dilation), self.groups
        )
        return y.to(x.dtype)


class RMSNorm(nn.Module):
    """L2-normalise over channels, times sqrt(C) and a learnt gain; no bias, no mean removal.

    The 1e-12 clamp is on the L2 norm, as ``F.normalize`` does (wan_vae_facts.md §2.2).
    ``spatial_dims`` is 3 for (B, C, T, H, W) inputs and 2 for the attention's (B, C, H, W).
    """

    def __init__(self, channels: int, spatial_dims: int = 3) -> None:
        super().__init__()
        self.scale = math.sqrt(channels)
        self.gamma = nn.Parameter(torch.ones((channels,) + (1,) * spatial_dims))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    """Pre-activation block: norm, SiLU, conv, norm, SiLU, dropout(0), conv, plus shortcut."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_channels),
            nn.SiLU(),
            CausalConv3d(in_channels, out_channels, 3, padding=1),
            RMSNorm(out_channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            CausalConv3d(out_channels, out_channels, 3, padding=1),
        )
        self.shortcut: nn.Module = (
            CausalConv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor, cache: StreamCache | None = None) -> Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = layer(x, cache) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H·W positions of each frame (no temporal mixing)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = RMSNorm(channels, spatial_dims=2)
        self.to_qkv = nn.Conv2d(channels, channels * 3, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, cache: StreamCache | None = None) -> Tensor:
        del cache  # per-frame: nothing to carry between chunks
        b, c, t, h, w = x.shape
        if t == 0:
            return x
        y = self.norm(_fold_time(x))
        # channel order of to_qkv is q | k | v; tokens are row-major H·W (wan_vae_facts.md §2.4)
        qkv = self.to_qkv(y).reshape(b * t, 3, c, h * w).transpose(-1, -2)
        q, k, v = qkv.unbind(dim=1)
        y = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1))
        y = y.squeeze(1).transpose(-1, -2).reshape(b * t, c, h, w)
        return _unfold_time(self.proj(y), b) + x


class _NearestUpsample2x(nn.Module):
    """Pixel duplication; the parameter-free ``resample.0`` of the up modes."""

    def forward(self, x: Tensor) -> Tensor:
        return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


RESAMPLE_MODES = ("downsample2d", "downsample3d", "upsample2d", "upsample3d")


class Resample(nn.Module):
    """2x spatial down/up-sampling, with an optional 2x temporal step and its first-frame rules.

    downsample3d: spatial step, then out[0] = x[0] and out[j] = time_conv(x[2j-2..2j]).
    upsample3d: temporal step first; frame 0 passes through and every later frame becomes two,
    from a causal conv that never sees frame 0 (wan_vae_facts.md §2.5, §3.3, §3.4).
    """

    def __init__(self, channels: int, mode: str) -> None:
        super().__init__()
        if mode not in RESAMPLE_MODES:
            raise ValueError(f"mode must be one of {RESAMPLE_MODES}, got {mode!r}")
        self.mode = mode
        self.channels = channels
        self.time_conv: CausalConv3d | None = None
        if mode.startswith("downsample"):
            # right/bottom-only pad keeps the stride-2 grid of the release (wan_vae_facts.md §5)
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(channels, channels, 3, stride=2))
            if mode == "downsample3d":
                self.time_conv = CausalConv3d(channels, channels, (3, 1, 1), stride=(2, 1, 1), padding=0)
        else:
            self.resample = nn.Sequential(_NearestUpsample2x(), nn.Conv2d(channels, channels // 2, 3, padding=1))
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(channels, channels * 2, (3, 1, 1), padding=(1, 0, 0))

    def _spatial(self, x: Tensor) -> Tensor:
        return _unfold_time(self.resample(_fold_time(x)), x.shape[0])

    def forward(self, x: Tensor, cache: StreamCache | None = None) -> Tensor:
        if self.mode == "upsample3d":
            x = self._time_upsample(x, cache)
        x = self._spatial(x)
        if self.mode == "downsample3d":
            x = self._time_downsample(x, cache)
        return x

    def _time_downsample(self, x: Tensor, cache: StreamCache | None) -> Tensor:
        assert self.time_conv is not None
        started = cache is not None and cache.get(self) is not None
        if started:
            assert cache is not None
            pending = torch.cat([cache.get(self), x], dim=2)
            head = x[:, :, :0]
        else:
            pending = x
            head = x[:, :, :1]  # frame 0 passes through untouched
        # windows start at even offsets of the pending frames; a window needs 3 frames
        n_windows = max(pending.shape[2] - 1, 0) // 2
        body = self.time_conv(pending[:, :, : 2 * n_windows + 1]) if n_windows else x[:, :, :0]
        if cache is not None and pending.shape[2] > 0:
            cache.put(self, pending[:, :, 2 * n_windows :].clone())
        return torch.cat([head, body], dim=2) if head.shape[2] else body

    def _time_upsample(self, x: Tensor, cache: StreamCache | None) -> Tensor:
        assert self.time_conv is not None
        started = cache is not None and cache.get(self) is not None
        if started:
            head, rest = x[:, :, :0], x
        else:
            head, rest = x[:, :, :1], x[:, :, 1:]
            if cache is not None and x.shape[2] > 0:
                cache.put(self, True)
        b, c, t, h, w = rest.shape
        # the time_conv's own cache holds only frames >= 1, so it never sees frame 0
        y = self.time_conv(rest, cache)
        # channels [0, C) give the first of each frame pair, [C, 2C) the second
        y = y.reshape(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)
        return torch.cat([head, y], dim=2) if head.shape[2] else y


STREAMING_LAYERS = (CausalConv3d, ResidualBlock, AttentionBlock, Resample)


def run_sequence(layers: nn.Sequential, x: Tensor, cache: StreamCache | None) -> Tensor:
    """Apply a Sequential, handing the stream cache to the layers that keep temporal state."""
    for layer in layers:
        x = layer(x, cache) if isinstance(layer, STREAMING_LAYERS) else layer(x)
    return x


def causal_head(in_channels: int, out_channels: int) -> nn.Sequential:
    """RMS norm, SiLU, k=3 causal conv: the last stage of encoder and decoder (keys head.0, head.2)."""
    return nn.Sequential(RMSNorm(in_channels), nn.SiLU(), CausalConv3d(in_channels, out_channels, 3, padding=1))
