"""Arms: the rig-backend interface, drivers behind it (Flexiv, sim), the arm component."""
