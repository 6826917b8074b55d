"""Rig assembly: the rig configuration file (``config``), the calibrated extrinsics every node
takes from one calibration folder (``extrinsics``) and the ``a2w rig check`` preflight (``check``,
``cli``). docs/rig.md describes them."""
