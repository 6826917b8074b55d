"""A2World model family (torch and numpy only: no ROS, no hardware, no threads)."""
