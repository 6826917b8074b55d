"""The live monitor: the rig's cameras beside the policy's predictions, the policy's plans and
timing, the arms, the sim and every node's diagnostics, in Rerun (docs/architecture.md §4).

``log`` is the behaviour (messages in, Rerun log calls out, time as an argument), ``viewer`` the
web viewer served from the rerun-sdk wheel, ``component`` the node (the policy's topic names come
from ``a2w.policy.topics``).
"""
