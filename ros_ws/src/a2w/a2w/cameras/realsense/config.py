"""Parameters of the RealSense driver: the camera node declares them as ``realsense.<name>``."""

from __future__ import annotations

from dataclasses import dataclass

from a2w.host.params import ParamGroup, param


@dataclass
class RealSenseParams(ParamGroup):
    serials: list[str] = param(["", "", ""], "device serial per view, in the order of views; a "
                                             "digit-only serial may be written with a leading '_'")
    allow_usb2: bool = param(False, "accept cameras on a USB 2 link")
