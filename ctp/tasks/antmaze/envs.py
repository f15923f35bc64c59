"""Gymnasium-Robotics AntMaze envs for data collection and evaluation."""

from __future__ import annotations

from typing import Any

from ctp.tasks.antmaze.spec import AntMazeSpec
from ctp.tasks.maze_grid import register_robotics_envs
from ctp.utils.errors import CTPError


def make_env(spec: AntMazeSpec, *, evaluation: bool = True,
             max_episode_steps: int | None = None) -> Any:
    """One ``AntMaze_*-v4`` env (27-dim ant observation, continuing task).

    evaluation: the evaluation task (its reset and goal cells, the goal kept when reached,
    ``spec.episode_steps`` steps); otherwise the dataset's collection map, where a reached goal
    is replaced by another one of the map's goal cells (the play and diverse kinds).
    """
    import warnings

    import gymnasium as gym

    register_robotics_envs()
    maze_map = spec.eval_map() if evaluation else spec.data_map()
    with warnings.catch_warnings():  # v4 on purpose: D4RL's 27-dim observation
        warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
        return gym.make(spec.gym_id, maze_map=maze_map, continuing_task=True,
                        reset_target=spec.continuing and not evaluation,
                        max_episode_steps=max_episode_steps or spec.episode_steps)


def make_vector_env(spec: AntMazeSpec, num_envs: int) -> Any:
    """``num_envs`` evaluation envs in a ``SyncVectorEnv``: observation dicts with
    ``observation [E, 27]``, ``achieved_goal`` and ``desired_goal [E, 2]``; actions ``[E, 8]``."""
    import gymnasium as gym

    if num_envs < 1:
        raise CTPError(f"--num-envs: expected at least 1, got {num_envs}")
    return gym.vector.SyncVectorEnv([lambda: make_env(spec) for _ in range(num_envs)])
