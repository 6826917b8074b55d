"""VR teleop (issue 19): the headset page in ``teleop/`` drives both arms through ``teleop_node``.

``mapping``: frames, alignment and the clutch; ``session``: the page's protocol, the input checks and
the dead man; ``server``: HTTP(S) + WebSocket serving the page; ``component``: the node.
"""
