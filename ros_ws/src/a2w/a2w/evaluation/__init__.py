"""Evaluation of the stack's models: a policy closed loop on the simulated rig (``policy``)."""
