"""The sim camera driver: a camera of the MuJoCo world the sim node owns (same process only)."""
