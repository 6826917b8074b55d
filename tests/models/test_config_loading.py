"""The three model configs (A2World, A2World-policy, VAE) are read by one strict loader: round trip,
unknown fields and wrong types named the same way for each, nested configs included."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from a2world.config import DiTConfig, QuirkOptions, released_config, tiny_config
from a2world.policy.config import PolicyConfig, released_policy_config, tiny_policy_config
from a2world.vae.config import VAEConfig

READERS: dict[type, Callable[[Any], Any]] = {
    DiTConfig: DiTConfig.from_dict,
    PolicyConfig: PolicyConfig.from_dict,
    VAEConfig: lambda data: VAEConfig.from_json(json.dumps(data)),
}
CONFIGS = [
    tiny_config("pretrained"),
    released_config("sim").with_updates(quirks=QuirkOptions(vpb_batch_mixing=False)),
    tiny_policy_config(action_mlp_ratio=1.0),
    released_policy_config(),
    VAEConfig.tiny(),
    VAEConfig.released(),
]


def json_form(config: Any) -> dict[str, Any]:
    return json.loads(config.to_json())


def read(config_type: type, data: Any) -> Any:
    return READERS[config_type](data)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_round_trip(config):
    assert read(type(config), json_form(config)) == config


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_unknown_fields_are_named(config):
    data = {**json_form(config), "bogus": 1, "extra_field": None}
    with pytest.raises(ValueError, match=rf"unknown {type(config).__name__} fields: \['bogus', 'extra_field'\]"):
        read(type(config), data)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_every_field_of_the_wrong_type_is_named(config):
    for f in dataclasses.fields(config):
        data = json_form(config)
        nested = getattr(config, f.name)
        if dataclasses.is_dataclass(nested):
            data[f.name] = [1]  # a nested config must be a JSON object
            match = f"{type(nested).__name__} must be a JSON object"
        else:
            data[f.name] = {"not": "a value"}  # no scalar or tuple field takes an object
            match = f"{type(config).__name__} fields of the wrong type: {f.name}="
        with pytest.raises(ValueError, match=match):
            read(type(config), data)


def test_nested_configs_are_read_strictly():
    """Unknown fields inside the policy's backbone and the backbone's quirks are named too."""
    data = json_form(tiny_policy_config())
    data["backbone"]["quirks"]["rope_typo"] = True
    with pytest.raises(ValueError, match=r"unknown QuirkOptions fields: \['rope_typo'\]"):
        PolicyConfig.from_dict(data)
    data = json_form(tiny_policy_config())
    data["backbone"]["num_heads"] = "2"
    with pytest.raises(ValueError, match="DiTConfig fields of the wrong type: num_heads='2'"):
        PolicyConfig.from_dict(data)
