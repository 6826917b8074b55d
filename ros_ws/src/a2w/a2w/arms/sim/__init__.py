"""The simulated arms driver: the two arms of the MuJoCo rig (a2w.sim) behind ``RigBackend``.

``params`` holds its parameters (``sim.<name>`` on the arm node; importing it does not load
MuJoCo), ``backend`` the backend and the arm node's factory.
"""

import a2w.sim  # noqa: F401  (its offscreen-GL default must be set before MuJoCo loads)
