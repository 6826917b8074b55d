"""A2World-sim history path in the net: view-pair bias axes, batch mixing, memory."""

from __future__ import annotations

import torch

from a2world.config import QuirkOptions
from a2world.dit import HistoryInputs
from a2world.history_modules import ViewPairBias


def _future_only_state():
    # features depend only on the future-target axis (dim 1)
    f = torch.linspace(-1, 1, 20)[None, :, None, None]
    return f.expand(1, 20, 20, 22).clone()


def test_vpb_swapped_axes_quirk():
    torch.manual_seed(0)
    vpb = ViewPairBias(22, 16, 10.0)
    state = _future_only_state()
    swapped = vpb(state, 6, 5, 4, 3, swapped_axes=True)[0]
    straight = vpb(state, 6, 5, 4, 3, swapped_axes=False)[0]
    assert swapped.shape == straight.shape == (6 * 4, 5 * 3)
    # Reference: the future axis lands on the history frames (columns), rows are constant.
    assert torch.allclose(swapped, swapped[:1].expand_as(swapped))
    assert not torch.allclose(swapped, swapped[:, :1].expand_as(swapped))
    # Corrected: the future axis indexes the query frames (rows).
    assert torch.allclose(straight, straight[:, :1].expand_as(straight))
    assert not torch.allclose(straight, straight[:1].expand_as(straight))
    # each value covers a block of tokens
    assert torch.equal(swapped[:4, :3], swapped[0, 0].expand(4, 3))


def test_vpb_clamp():
    vpb = ViewPairBias(22, 4, 10.0)
    with torch.no_grad():
        vpb.mlp[2].bias.fill_(100.0)
    assert vpb(torch.zeros(1, 20, 20, 22), 6, 5, 1, 1).max() == 10.0


def _bias_rows(net, batch):
    torch.manual_seed(5)
    hist = HistoryInputs(torch.randn(batch, 16, 10, 8, 8), torch.randn(batch, 20, 20, 22))
    _, bias, _ = net._history_context(hist, n_views=2, frames=6, tokens_per_frame=16, batch=batch)
    per_sample = net.vpb(hist.state, 6, 5, 16, 16)
    return bias, per_sample


def test_vpb_batch_mixing_quirk(tiny_net):
    bias, per = _bias_rows(tiny_net("sim"), 2)
    # rows are view-major (v·B + b); the reference expands sample-major (row r -> sample r // V)
    assert torch.equal(bias[1], per[0])  # view 0 of sample 1 gets sample 0's bias
    assert torch.equal(bias[2], per[1])
    fixed, per = _bias_rows(tiny_net("sim", quirks=QuirkOptions(vpb_batch_mixing=False)), 2)
    assert [torch.equal(fixed[r], per[r % 2]) for r in range(4)] == [True] * 4
    # batch 1 is the same either way
    one, per1 = _bias_rows(tiny_net("sim"), 1)
    assert torch.equal(one[0], per1[0]) and torch.equal(one[1], per1[0])


def test_history_changes_the_prediction(tiny_net, tiny_inputs):
    net = tiny_net("sim")
    inp = tiny_inputs("sim")
    out = net(**inp)
    other = HistoryInputs(inp["history"].latent.flip(2), inp["history"].state)
    assert not torch.allclose(net(**{**inp, "history": other}), out)
    other = HistoryInputs(inp["history"].latent, inp["history"].state * 2)
    assert not torch.allclose(net(**{**inp, "history": other}), out)
