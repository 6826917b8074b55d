"""The Flexiv driver: two Rizon 4S arms through the Flexiv RDK (1.x line, NRT Cartesian).

``params`` (the arm node's ``flexiv.<name>`` parameters), ``backend`` (the ``RigBackend`` and the
arm node's factory), ``worker`` (one RDK process per arm), ``link`` (node <-> worker plumbing),
``rdk_api`` (the RDK surface used, as data) and ``gripper`` (the 2F-85 behind the controller).
Stdlib only here: the worker imports this package in the RDK's own Python.
"""
