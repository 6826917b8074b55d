"""Parameters of the playback driver: the camera node declares them as ``playback.<name>``."""

from __future__ import annotations

from dataclasses import dataclass

from a2w.host.params import ParamGroup, param


@dataclass
class PlaybackParams(ParamGroup):
    dir: str = param("", "directory with one <view>.db3 recording per view")
    loop: bool = param(True, "restart a recording when it ends")
    realtime: bool = param(True, "pace playback by the recorded stamps")
    restamp: bool = param(True, "shift recorded stamps to now, the same shift for all views")
