"""The VAE's module tree reproduces the released state dict; weights load strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from a2world.vae import VAEConfig, WanVAE
from a2world.vae.weights import CheckpointMismatchError, check_state_dict, load_vae, save_vae

KEYS_FILE = Path(__file__).parent / "data" / "wan_vae_keys.txt"  # copied from wan_vae_facts.md §1.4


def _release_listing() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        name, shape = line.split(" ", 1)
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


@pytest.fixture(scope="module")
def meta_vae() -> WanVAE:
    with torch.device("meta"):
        return WanVAE(VAEConfig.released())


def test_released_config_has_the_194_keys_in_order_with_shapes(meta_vae: WanVAE) -> None:
    got = [(k, tuple(v.shape)) for k, v in meta_vae.state_dict().items()]
    expected = _release_listing()
    assert len(expected) == 194
    assert got == expected


def test_released_config_parameter_counts(meta_vae: WanVAE) -> None:
    # wan_vae_facts.md §6
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(meta_vae) == 126_892_531
    assert count(meta_vae.encoder) == 53_595_872
    assert count(meta_vae.decoder) == 73_295_331
    assert list(meta_vae.buffers()) == []


def test_tiny_config_keeps_key_names_and_compression() -> None:
    tiny = WanVAE(VAEConfig.tiny())
    names = [k for k, _ in _release_listing()]
    assert list(tiny.state_dict()) == names
    assert tiny.config.spatial_compression == 8 and tiny.config.temporal_compression == 4
    assert sum(p.numel() for p in tiny.parameters()) < 2_000_000


def test_mismatch_error_lists_missing_unexpected_and_misshaped_keys(meta_vae: WanVAE) -> None:
    state = {k: torch.empty(v.shape, device="meta") for k, v in meta_vae.state_dict().items()}
    del state["decoder.head.2.bias"]
    state["vae.extra"] = torch.empty(1, device="meta")
    state["encoder.middle.1.norm.gamma"] = torch.empty(384, device="meta")  # (C,) instead of (C,1,1)
    with pytest.raises(CheckpointMismatchError) as info:
        check_state_dict(meta_vae, state, "test.pth")
    err = info.value
    assert err.missing == ["decoder.head.2.bias"]
    assert err.unexpected == ["vae.extra"]
    assert err.mismatched == [("encoder.middle.1.norm.gamma", (384, 1, 1), (384,))]
    text = str(err)
    for fragment in ("test.pth", "decoder.head.2.bias", "vae.extra", "encoder.middle.1.norm.gamma", "(384, 1, 1)"):
        assert fragment in text


def test_released_style_pth_loads_strictly_and_casts(tmp_path: Path) -> None:
    torch.manual_seed(3)
    src = WanVAE(VAEConfig.tiny())
    path = tmp_path / "tokenizer.pth"
    torch.save(src.state_dict(), path)  # a flat dict of tensors, like the release
    vae = load_vae(path, config=VAEConfig.tiny(), dtype=torch.bfloat16)
    assert vae.compute_dtype == torch.bfloat16
    for k, v in src.state_dict().items():
        assert torch.equal(vae.state_dict()[k], v.to(torch.bfloat16)), k

    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": src.state_dict()}, wrapped)
    with pytest.raises(ValueError, match="flat dict"):
        load_vae(wrapped, config=VAEConfig.tiny())
    with pytest.raises(CheckpointMismatchError, match="shape mismatch encoder.conv1.weight"):
        load_vae(path)  # tiny weights into the released config: every shape differs


def test_safetensors_round_trip_carries_config_and_dtype(tmp_path: Path) -> None:
    torch.manual_seed(4)
    src = WanVAE(VAEConfig.tiny(dim=12)).to(torch.bfloat16)
    path = tmp_path / "vae.safetensors"
    save_vae(src, path)
    back = load_vae(path)
    assert back.config == src.config
    assert back.compute_dtype == torch.bfloat16
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), back.state_dict().values()))
    as_fp32 = load_vae(path, dtype=torch.float32)
    assert as_fp32.compute_dtype == torch.float32
    with pytest.raises(ValueError, match="differs"):
        load_vae(path, config=VAEConfig.tiny(dim=8))


def test_released_config_runs_a_small_clip() -> None:
    """The full-width network wires up end to end (channel halving, both 3d resamplers)."""
    torch.manual_seed(0)
    vae = WanVAE(VAEConfig.released()).eval()
    video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    z = vae.encode(video)
    assert z.shape == (1, 16, 2, 2, 2)
    out = vae.decode(z)
    assert out.shape == (1, 3, 5, 16, 16) and torch.isfinite(out).all()
