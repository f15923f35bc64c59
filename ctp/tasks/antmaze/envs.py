"""Gymnasium-Robotics AntMaze envs for data collection and evaluation."""

from __future__ import annotations

from typing import Any

from ctp.tasks.antmaze.spec import AntMazeSpec
from ctp.tasks.maze_grid import make_maze_env
from ctp.utils.errors import CTPError


def make_env(spec: AntMazeSpec, *, evaluation: bool = True,
             max_episode_steps: int | None = None, stop_at_goal: bool = False) -> Any:
    """One ``AntMaze_*-v4`` env (27-dim ant observation, continuing task).

    evaluation: the evaluation task (its reset and goal cells, the goal kept when reached,
    ``spec.episode_steps`` steps); otherwise the dataset's collection map, where a reached goal
    is replaced by another one of the map's goal cells (the play and diverse kinds).
    stop_at_goal: the episode ends (terminated, reward 1) at the first step within 0.45 m of
    the goal, as D4RL's evaluation does, so its return is 1 on success and 0 otherwise.
    """
    import warnings

    maze_map = spec.eval_map() if evaluation else spec.data_map()
    with warnings.catch_warnings():  # v4 on purpose: D4RL's 27-dim observation
        warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
        return make_maze_env(spec.gym_id, maze_map=maze_map, continuing_task=not stop_at_goal,
                             reset_target=spec.continuing and not evaluation,
                             max_episode_steps=max_episode_steps or spec.episode_steps)


def make_vector_env(spec: AntMazeSpec, num_envs: int, stop_at_goal: bool = False) -> Any:
    """``num_envs`` evaluation envs in a ``SyncVectorEnv``: observation dicts with
    ``observation [E, 27]``, ``achieved_goal`` and ``desired_goal [E, 2]``; actions ``[E, 8]``.
    ``stop_at_goal``: as :func:`make_env`'s."""
    import gymnasium as gym

    if num_envs < 1:
        raise CTPError(f"--num-envs: expected at least 1, got {num_envs}")
    return gym.vector.SyncVectorEnv([lambda: make_env(spec, stop_at_goal=stop_at_goal)
                                     for _ in range(num_envs)])
