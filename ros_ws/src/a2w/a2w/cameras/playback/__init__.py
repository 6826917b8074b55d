"""The playback camera driver: recorded RealSense cameras (.db3) replayed behind the same interface."""
