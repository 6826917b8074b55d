"""The RealSense camera driver (pyrealsense2): live devices, their shared librealsense pieces, and
software devices that stand in for them in tests and benchmarks."""
