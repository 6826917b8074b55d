"""Parameters of the sim driver: the camera node declares them as ``sim.<name>``."""

from __future__ import annotations

from dataclasses import dataclass

from a2w.host.params import ParamGroup, param


@dataclass
class SimCameraParams(ParamGroup):
    world_name: str = param("sim", "world_name of the sim node whose world is rendered; that node "
                                   "must run in this process")
