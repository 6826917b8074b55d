"""The shadow world model: A2World-sim re-predicts the cameras from the executed motion and the
divergence from reality raises calibrated alarms (issue 18). ``motion``: executed 30 Hz deltas
composed to the model's 10 Hz actions; ``scores``: per-view divergence; ``alarm``: thresholds and
hysteresis; ``component``: the node."""
