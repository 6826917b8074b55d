"""The policy's topics the monitor shows, defined here so the policy node (its publisher) and the
monitor (a subscriber) import one spelling.

``/policy/chunk``: ``a2w.msgs.policy.ActionChunk``, each chunk as the policy plans it.
``/policy/predicted/<view>/color/image_raw``: ``CameraFrame``, the frame the policy predicts for that
view, stamped with the time it predicts (a chunk's 20 frames at 10 fps are published together when
the chunk arrives).
"""

from __future__ import annotations

POLICY_CHUNK_TOPIC = "/policy/chunk"
PREDICTED_PREFIX = "/policy/predicted"


def predicted_topic(view: str) -> str:
    """The topic of the policy's predicted frames of ``view``."""
    return f"{PREDICTED_PREFIX}/{view}/color/image_raw"
