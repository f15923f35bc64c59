"""Environment families ctp knows, one subpackage each (locomotion so far).

PointMaze still lives in ``ctp.envs`` and ``ctp.data``; it moves here with the task layer.
"""
