"""PointMaze env construction.

Cells and their geometry: ``ctp.tasks.maze_grid`` (unit cells here, maze_size_scaling = 1).
"""

from __future__ import annotations

from ctp.tasks.maze_grid import make_maze_env
from ctp.tasks.pointmaze.spec import MazeSpec
from ctp.utils.errors import CTPError


def make_env(
    spec: MazeSpec,
    *,
    eval_goal: bool = True,
    reset_target: bool = False,
    max_episode_steps: int | None = None,
):
    """A Gymnasium-Robotics PointMaze env (continuing task).

    eval_goal: use the single-task map (fixed goal cell, random reset); otherwise the plain
    layout, where goal and reset are both drawn at random (Multi2D and data generation).
    reset_target: re-sample the goal when it is reached (data generation only).
    """
    maze_map = spec.eval_map() if eval_goal else [list(row) for row in spec.layout]
    return make_maze_env(
        spec.gym_id,
        maze_map=maze_map,
        continuing_task=True,
        reset_target=reset_target,
        max_episode_steps=max_episode_steps or spec.episode_steps,
    )


def make_vector_env(spec: MazeSpec, num_envs: int, *, eval_goal: bool = True):
    """``num_envs`` copies of :func:`make_env` (no target reset) in a ``SyncVectorEnv``.

    Observations are batched dicts: ``observation`` ``[num_envs, 4]``, ``achieved_goal`` and
    ``desired_goal`` ``[num_envs, 2]``; actions ``[num_envs, 2]``.
    """
    import gymnasium as gym

    if num_envs < 1:
        raise CTPError(f"num_envs: expected at least 1, got {num_envs}")
    return gym.vector.SyncVectorEnv(
        [lambda: make_env(spec, eval_goal=eval_goal) for _ in range(num_envs)]
    )
