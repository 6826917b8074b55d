"""ONNX export of one A2World-policy denoiser evaluation and its onnxruntime runner.

The exported unit is `JointDenoiser` (preconditioning, conditioning replacement and the network):
the sampler loop stays in Python (its float64 step arithmetic is the same for both backends). The
graph is exported in float32 with static shapes for one engine geometry (batch, views, latent
size, context length), the RoPE angles folded in as constants. onnxruntime on CPU matches the torch
backend to a maximum absolute x0 difference of about 1e-5 per evaluation (tests assert 1e-4).
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from a2world.policy.diffusion import JointDenoiser

log = logging.getLogger(__name__)

INPUT_NAMES: tuple[str, ...] = (
    "x_video",
    "x_action",
    "sigma_video",
    "sigma_action",
    "clean_video",
    "frame_mask",
    "view_ids",
    "prefix",
    "prefix_mask",
    "context",
)
OUTPUT_NAMES: tuple[str, ...] = ("x0_video", "x0_action")
DEFAULT_OPSET = 17


def example_inputs(
    denoiser: JointDenoiser, batch: int, n_views: int, latent_hw: tuple[int, int], context_tokens: int
) -> tuple[torch.Tensor, ...]:
    """Tensors of the exported shapes (values are irrelevant for a static-shape export)."""
    cfg = denoiser.policy.config
    bb = cfg.backbone
    vt = n_views * cfg.latent_frames
    h, w = latent_hw
    device = denoiser.angles.device
    video = torch.zeros(batch, bb.latent_channels, vt, h, w, device=device)
    action = torch.zeros(batch, cfg.action_horizon, cfg.action_width, device=device)
    sigma = torch.ones(batch, device=device)
    mask_v = torch.zeros(batch, vt, device=device)
    mask_a = torch.zeros(batch, cfg.action_horizon, device=device)
    views = torch.arange(n_views, device=device)[None].expand(batch, -1).contiguous()
    context = torch.zeros(batch, context_tokens, cfg.context_dim, device=device)
    return (video, action, sigma, sigma, video, mask_v, views, action, mask_a, context)


def export_denoiser(
    denoiser: JointDenoiser,
    path: str | Path | None,
    batch: int,
    n_views: int,
    latent_hw: tuple[int, int],
    context_tokens: int,
    opset: int = DEFAULT_OPSET,
) -> bytes | Path:
    """Export to `path` and return it, or return the model bytes when `path` is None.

    Writing to a path lets the exporter move weights into external data files, which models
    over protobuf's 2 GB limit (the released size) need. The denoiser must be float32.
    """
    if denoiser.policy.dtype != torch.float32:
        raise ValueError(f"ONNX export needs a float32 policy, got {denoiser.policy.dtype}")
    args = example_inputs(denoiser, batch, n_views, latent_hw, context_tokens)
    target: io.BytesIO | str
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        target = str(path)
    else:
        target = io.BytesIO()
    was_training = denoiser.training
    denoiser.eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency here); it still exports this static graph faithfully.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            denoiser,
            args,
            target,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    denoiser.train(was_training)
    if isinstance(target, io.BytesIO):
        return target.getvalue()
    log.info("exported policy denoiser to %s (%.1f MB)", path, Path(path).stat().st_size / 1e6)
    return Path(path)


class OnnxDenoiser:
    """Runs an exported denoiser with onnxruntime; same call signature as `JointDenoiser`."""

    def __init__(self, model: str | Path | bytes, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, opts, providers=providers or ["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}
        if tuple(self.input_names) != INPUT_NAMES:
            # Constant-folded inputs are dropped by the exporter only if unused; every one is used.
            raise ValueError(f"unexpected ONNX inputs {self.input_names}, expected {list(INPUT_NAMES)}")

    def __call__(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(args) != len(INPUT_NAMES):
            raise ValueError(f"expected {len(INPUT_NAMES)} inputs, got {len(args)}")
        device = args[0].device
        feeds = {}
        for name, t in zip(INPUT_NAMES, args):
            arr = t.detach().cpu().numpy()
            feeds[name] = arr.astype(np.int64 if "int64" in self.input_types[name] else np.float32, copy=False)
        x0_v, x0_a = self.session.run(list(OUTPUT_NAMES), feeds)
        return torch.from_numpy(x0_v).to(device), torch.from_numpy(x0_a).to(device)
