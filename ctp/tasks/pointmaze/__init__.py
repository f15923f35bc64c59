"""PointMaze (Gymnasium-Robotics U-Maze, Medium, Large): specs, geometry and envs, the waypoint
expert and dataset generation, the loader, the plan-tracking controller, plots and the README
results table."""
