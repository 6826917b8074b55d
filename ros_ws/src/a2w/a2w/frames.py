"""Names of the rig's coordinate frames: the one place frame ids are spelled (docs/architecture.md §5).

``world`` is the table frame; each arm has ``<arm>_base`` (its mount, 45° yaw) and ``<arm>_tcp``;
each camera's image is in ``cam_<view>_color_optical_frame``, the id realsense-ros gives a camera
named ``cam_<view>`` (DESIGN.md §4, ros2_facts.md §1.1). The URDF's links use the same names.
"""

from __future__ import annotations

import re

WORLD = "world"
CAMERA_PREFIX = "cam_"

_OPTICAL = re.compile(r"^cam_(?P<view>.+?)_color_optical_frame$")


def base_frame(arm: str) -> str:
    """Frame of an arm's base (its mount on the table)."""
    return f"{arm}_base"


def tcp_frame(arm: str) -> str:
    """Frame of an arm's tool centre point."""
    return f"{arm}_tcp"


def camera_name(view: str) -> str:
    """realsense-ros ``camera_name`` of a view (``cam_front``)."""
    return f"{CAMERA_PREFIX}{view}"


def camera_link(view: str) -> str:
    """The camera body frame (realsense-ros ``<camera_name>_link``: x forward, z up)."""
    return f"{camera_name(view)}_link"


def optical_frame(view: str) -> str:
    """Frame of a view's colour image (z forward, x right, y down; REP 103 optical)."""
    return f"{camera_name(view)}_color_optical_frame"


def view_of_optical_frame(frame_id: str) -> str | None:
    """The view a ``cam_<view>_color_optical_frame`` id names, or None for any other id."""
    m = _OPTICAL.match(frame_id)
    return m.group("view") if m else None
