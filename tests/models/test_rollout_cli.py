"""`a2w model inspect` and `a2w model rollout` through the real entry point."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import torch

from a2w.cli import main
from a2world.checkpoint import save_checkpoint


def test_inspect_our_checkpoint_and_reference_layout(tiny_net, tmp_path, capsys):
    net = tiny_net("sim", num_blocks=1)
    ckpt = save_checkpoint(net, tmp_path / "ckpt")
    assert main(["model", "inspect", str(ckpt), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["variant"] == "sim" and info["layout_ok"]
    assert info["parameters"] == sum(p.numel() for p in net.parameters())
    assert info["dtypes"] == {"float32": len(net.state_dict())}
    # A tiny file in the reference format does not have the released 2B layout: exit 1, listed.
    ref = tmp_path / "tiny.pt"
    torch.save({f"net.{k}": v.to(torch.bfloat16) for k, v in net.state_dict().items()}, ref)
    assert main(["model", "inspect", str(ref)]) == 1
    out = capsys.readouterr().out
    assert "mis-shaped" in out and "missing" in out and "bfloat16" in out


def test_rollout_command_writes_mp4(tiny_net, tmp_path, capsys):
    ckpt = save_checkpoint(tiny_net("pretrained", num_blocks=1), tmp_path / "ckpt")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        p = tmp_path / f"view{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
        paths.append(str(p))
    np.save(tmp_path / "actions.npy", rng.normal(0, 0.01, (20, 14)).astype(np.float32))
    out = tmp_path / "out.mp4"
    rc = main(
        ["model", "rollout", "--checkpoint", str(ckpt), "--tokenizer", "tiny", "--images", *paths,
         "--view-ids", "2", "0", "--actions", str(tmp_path / "actions.npy"), "--out", str(out),
         "--size", "32", "--steps", "1", "--dtype", "fp32", "--device", "cpu"]
    )
    assert rc == 0, capsys.readouterr().out
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 21 and frames[0].shape == (32, 64, 3)
    assert main(["model", "rollout", "--checkpoint", str(ckpt), "--tokenizer", "tiny", "--images",
                 paths[0], "--view-ids", "2", "0", "--actions", "x.npy", "--out", str(out)]) == 2
