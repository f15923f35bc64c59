"""PointMaze environment specs, construction, maze geometry and the waypoint expert."""
