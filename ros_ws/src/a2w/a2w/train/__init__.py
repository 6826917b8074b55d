"""`a2w train`: the stack's models trained on recorded LeRobot v3 datasets.

This package reads datasets (``a2w.train.data``) and config files and hands tensors to the
training jobs of the models package (``a2world.train``), which holds the loop, the run directory
and the distributed wrapping.
"""
