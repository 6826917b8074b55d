"""The VAE's CPU convolution paths: the direct oneDNN call only where the CPU has the kernel.

CI machines differ (AVX-512 on one, AVX2 only on the next): oneDNN's bf16 convolution raises on
an AVX2-only CPU, so the bf16 kernel is chosen after a capability probe; without it a bf16 conv
runs in fp32 and is rounded back (PyTorch's own bf16 conv is hundreds of times slower there).
The fallback is forced here on every CPU; the bf16 kernel runs where supported.
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


def test_bf16_runs_in_bf16_only_with_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    w = torch.zeros(2, 2, 1, 1, 1)
    for supported, bf16_runs_in in ((False, torch.float32), (True, torch.bfloat16)):
        monkeypatch.setattr(layers, "onednn_bf16_supported", lambda s=supported: s)
        with torch.no_grad():
            assert layers._onednn_dtype(torch.zeros(1, 2, 1, 1, 1, dtype=torch.bfloat16), w) is bf16_runs_in
            assert layers._onednn_dtype(torch.zeros(1, 2, 1, 1, 1), w) is torch.float32
            # other dtypes always use PyTorch's dispatch
            assert layers._onednn_dtype(torch.zeros(1, 2, 1, 1, 1, dtype=torch.float16), w) is None
        # training keeps autograd: PyTorch's own conv
        x = torch.zeros(1, 2, 1, 1, 1, requires_grad=True)
        assert layers._onednn_dtype(x, w) is None


@pytest.mark.parametrize("shape,stride", [((1, 4, 5, 9, 7), 1), ((2, 3, 3, 8, 8), 2), ((1, 8, 1, 4, 4), 1)])
def test_bf16_fallback_runs_on_any_cpu_and_matches_fp32(no_bf16_kernel: None, shape: tuple[int, ...],
                                                         stride: int) -> None:
    conv = CausalConv3d(shape[1], 6, 3, stride=(1, stride, stride), padding=1).to(torch.bfloat16)
    x = torch.randn(*shape, dtype=torch.bfloat16)
    with torch.no_grad():
        expected = _reference(conv, x)  # fp32 conv of the very bf16 values
        got = conv(x)
    assert got.dtype == torch.bfloat16
    # one bf16 rounding of an fp32 result (accumulation order may flip the last bit)
    torch.testing.assert_close(got.float(), expected, rtol=2 ** -7, atol=1e-3)


def test_bf16_training_path_keeps_gradients(no_bf16_kernel: None) -> None:
    conv = CausalConv3d(3, 4, 3, padding=1).to(torch.bfloat16)
    x = torch.randn(1, 3, 2, 5, 5, dtype=torch.bfloat16, requires_grad=True)
    conv(x).float().sum().backward()
    assert x.grad is not None and conv.weight.grad is not None and torch.isfinite(x.grad.float()).all()


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
