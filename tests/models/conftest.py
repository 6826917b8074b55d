"""Fixtures for tests/models; the helpers behind them are in support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from a2world.dit import A2WorldDiT
from tests.models.support import make_dit_inputs, make_net


@pytest.fixture(params=["pretrained", "sim"])
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tiny_net() -> Callable[..., A2WorldDiT]:
    return make_net


@pytest.fixture
def tiny_inputs() -> Callable[..., dict]:
    return make_dit_inputs


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test: the test machine's cores are shared, and more threads only
    oversubscribe them."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
