"""The recorder's episode control: the request's validation and its ROS mapping
(a2w_interfaces/srv/EpisodeControl) for every command, through CDR with rosbags (no rclpy)."""

from __future__ import annotations

import pytest

from a2w.msgs.episode import EpisodeCommand, EpisodeControlRequest, EpisodeControlResponse
from a2w.ros import codec
from a2w.ros.codec import RosbagsKit
from a2w.ros.interfaces import jazzy_typestore


@pytest.mark.parametrize("command", list(EpisodeCommand))
def test_every_command_round_trips_through_cdr(command: EpisodeCommand) -> None:
    store = jazzy_typestore()
    c = codec.service_codec(EpisodeControlRequest)
    kit = RosbagsKit(store)
    req = EpisodeControlRequest(command, "lift the box with both arms", 12)
    raw = store.serialize_cdr(c.encode_request(kit, req), c.ros_type + "_Request")
    assert c.decode_request(store.deserialize_cdr(raw, c.ros_type + "_Request")) == req
    resp = EpisodeControlResponse(False, "no episode is recording", -1)
    raw = store.serialize_cdr(c.encode_response(kit, resp), c.ros_type + "_Response")
    assert c.decode_response(store.deserialize_cdr(raw, c.ros_type + "_Response")) == resp


@pytest.mark.parametrize("kwargs,match", [
    ({"command": "pause"}, "command"),
    ({"command": "start"}, "task"),
    ({"command": "start", "task": "   "}, "task"),
    ({"command": "save", "task": 3}, "task"),
    ({"command": "save", "seed": -2}, "seed"),
    ({"command": "save", "seed": 1.5}, "seed"),
])
def test_bad_requests_are_refused_naming_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EpisodeControlRequest(**kwargs)


def test_unknown_command_code_on_the_wire_is_refused() -> None:
    store = jazzy_typestore()
    c = codec.service_codec(EpisodeControlRequest)
    msg = c.encode_request(RosbagsKit(store), EpisodeControlRequest(EpisodeCommand.SAVE))
    msg.command = 9
    with pytest.raises(ValueError, match="command"):
        c.decode_request(msg)
