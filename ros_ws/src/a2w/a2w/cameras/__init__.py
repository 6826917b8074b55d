"""Cameras: the camera-source interface, drivers behind it, the camera component, pairing."""
