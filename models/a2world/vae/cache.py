"""Per-layer streaming state for chunked causal encode/decode.

One :class:`StreamCache` lives for one encode (or decode) call over one video. Every causal
layer keeps what it needs from earlier chunks under its own module as the key, so chunks can be
fed one after another with memory bounded by the chunk size.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class StreamCache:
    """Layer-keyed store of the state carried between temporal chunks.

    Keys are module objects (identity), so two layers never collide and no running slot index
    has to be kept in step with the forward order.
    """

    def __init__(self) -> None:
        self._state: dict[int, Any] = {}
        # Keep the modules alive so their ids cannot be reused while this cache exists.
        self._owners: dict[int, nn.Module] = {}

    def get(self, layer: nn.Module) -> Any:
        return self._state.get(id(layer))

    def put(self, layer: nn.Module, value: Any) -> None:
        self._state[id(layer)] = value
        self._owners[id(layer)] = layer

    def __len__(self) -> int:
        return len(self._state)
