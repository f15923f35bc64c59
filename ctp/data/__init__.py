"""Offline data: PointMaze dataset generation (Minari format), loading, normalising, windows."""
