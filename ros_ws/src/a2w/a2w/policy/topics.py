"""The policy node's names on the graph, importable without loading the model (torch).

Predicted frames use the camera topic layout (``<prefix>/<view>/color/image_raw``) under
``/policy/predicted``, so any image viewer shows them; each frame is stamped with the time it predicts.
"""

from __future__ import annotations

CHUNK_TOPIC = "/policy/chunk"  # ActionChunk: every accepted chunk, deltas and composed targets
PREDICTED_PREFIX = "/policy/predicted"
START_SERVICE = "/policy/start"  # StartPolicy: take the arms and run (or resume, or change instruction)
STOP_SERVICE = "/policy/stop"  # Stop: hand the arms back held, forget the committed actions
PAUSE_SERVICE = "/policy/pause"  # Stop: keep the arms, hold still, no new chunks until /policy/start
INSTRUCTION_SERVICE = "/policy/set_instruction"  # SetInstruction: condition the next chunks on it


def predicted_topic(view: str) -> str:
    """Where the predicted frames of ``view`` are published."""
    return f"{PREDICTED_PREFIX}/{view}/color/image_raw"
