"""Training of the stack's own models: the loop, the run directory, data-parallel wrapping and one
module per job (``tokenizer``: the Wan-structured VAE; ``policy``: A2World-policy on cached latents).

This package sees data only as tensors; reading recorded datasets and the ``a2w train`` command
live in the runtime core (``a2w.train``), which may import this one (docs/architecture.md §3).
"""

from a2world.train.run import LoopConfig, RunDir, TrainError, TrainResult, train

__all__ = ["LoopConfig", "RunDir", "TrainError", "TrainResult", "train"]
