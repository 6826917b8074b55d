"""The VAE's CPU convolution paths: the direct oneDNN call only where the CPU has the kernel.

CI machines differ (AVX-512 on one, AVX2 only on the next): oneDNN's bf16 convolution raises on
an AVX2-only CPU, so the fast path is chosen after a capability probe and PyTorch's own conv is
the fallback. The fallback is forced here on every CPU; the fast path runs where supported.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import torch
import torch.nn.functional as F

from a2world.vae import layers
from a2world.vae.layers import CausalConv3d


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def no_bf16_kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(layers, "onednn_bf16_supported", lambda: False)
    yield


def _reference(conv: CausalConv3d, x: torch.Tensor) -> torch.Tensor:
    """fp32 conv3d with the causal padding written out."""
    pt = conv.front_frames
    pw, _, ph, _ = conv.spatial_pad
    return F.conv3d(F.pad(x.float(), (pw, pw, ph, ph, pt, 0)), conv.weight.float(), conv.bias.float(),
                    stride=conv.stride)


def test_probe_agrees_with_torch_own_check() -> None:
    own = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if own is None:
        pytest.skip("this torch has no torch.ops.mkldnn._is_mkldnn_bf16_supported to compare with")
    assert layers.onednn_bf16_supported() == bool(own())


def test_bf16_goes_direct_only_with_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    w = torch.zeros(2, 2, 1, 1, 1)
    for supported in (False, True):
        monkeypatch.setattr(layers, "onednn_bf16_supported", lambda s=supported: s)
        with torch.no_grad():
            assert layers._use_onednn(torch.zeros(1, 2, 1, 1, 1, dtype=torch.bfloat16), w) is supported
            assert layers._use_onednn(torch.zeros(1, 2, 1, 1, 1), w) is True
            # other dtypes always use PyTorch's dispatch
            assert layers._use_onednn(torch.zeros(1, 2, 1, 1, 1, dtype=torch.float16), w) is False


@pytest.mark.parametrize("shape,stride", [((1, 4, 5, 9, 7), 1), ((2, 3, 3, 8, 8), 2), ((1, 8, 1, 4, 4), 1)])
def test_bf16_fallback_runs_on_any_cpu_and_matches_fp32(no_bf16_kernel: None, shape: tuple[int, ...],
                                                         stride: int) -> None:
    conv = CausalConv3d(shape[1], 6, 3, stride=(1, stride, stride), padding=1)
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = _reference(conv, x)
        got = conv.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, rtol=0.05, atol=0.05)


def test_bf16_fast_path_matches_fallback_where_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    if not layers.onednn_bf16_supported():
        pytest.skip("this CPU has no oneDNN bf16 convolution (needs AVX-512 BW/VL/DQ or AVX-NE-CONVERT); "
                    "the fallback is covered by the test above")
    conv = CausalConv3d(4, 6, 3, padding=1).to(torch.bfloat16)
    x = torch.randn(1, 4, 5, 9, 7, dtype=torch.bfloat16)
    with torch.no_grad():
        fast = conv(x)
        monkeypatch.setattr(layers, "onednn_bf16_supported", lambda: False)
        slow = conv(x)
    torch.testing.assert_close(fast.float(), slow.float(), rtol=0.02, atol=0.02)


def test_fp32_direct_path_equals_pytorch_conv() -> None:
    conv = CausalConv3d(4, 6, 3, padding=1)
    x = torch.randn(1, 4, 5, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), _reference(conv, x), rtol=1e-5, atol=1e-5)
