"""The simulated rig: a MuJoCo dual-arm scene behind the same camera and arm interfaces as the
real hardware (docs/architecture.md §8).

Importing this package sets ``MUJOCO_GL=osmesa`` when it is unset, before MuJoCo is imported, so
offscreen rendering works on CPU-only machines (the Makefile exports the same default).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
