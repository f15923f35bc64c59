"""AntMaze: D4RL's long-horizon, goal-conditioned ant navigation (Gymnasium-Robotics mazes)."""
