"""PointMaze (Gymnasium-Robotics U-Maze, Medium, Large) as a task: ``task.POINTMAZE`` is what
the method uses; beside it the specs, geometry and envs, the waypoint expert and dataset
generation, the loader, the plan-tracking controller, plots and the README results table."""
