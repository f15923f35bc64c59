"""PointMaze as a planning task: start + goal inpainting, the goal-reach scorer, the tracking
controller, vectorised Gymnasium-Robotics envs, D4RL maze2d constants and the maze plot."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.kernels import dynamics_error, goal_reward
from ctp.tasks.base import (
    VELOCITY_SOURCES,
    Candidates,
    Condition,
    Observation,
    Scorer,
    hold_after_arrival,
)
from ctp.tasks.pointmaze.controller import PlanFollower
from ctp.tasks.pointmaze.loader import MazeData, check_maze_spaces, load_maze_dataset
from ctp.tasks.pointmaze.spec import (
    ENV_DT,
    GOAL_DIMS,
    GOAL_RADIUS,
    MAZES,
    get_maze_spec,
    maze_for_dataset,
)
from ctp.utils.errors import CTPError


def reward_score(plans: Candidates) -> torch.Tensor:
    """The reward the plan collects: steps from its first arrival within the goal radius."""
    return goal_reward(plans.raw, plans.goal, goal_radius=plans.goal_radius)


def dynamics_score(plans: Candidates) -> torch.Tensor:
    """Minus the plan's dynamics inconsistency (positions against integrated velocities)."""
    return -dynamics_error(plans.raw, step_dt=ENV_DT * plans.stride)


class PointMazeTask:
    """The three Gymnasium-Robotics PointMaze mazes (states x, y, vx, vy; goal x, y).

    Conditions pin the start state at index 0 and the goal state, the goal position at
    rest (zero velocity), at index H - 1. Scorers (``ctp.kernels``): ``reward``, the reward the
    plan collects (default weight 1), and ``dynamics``, a penalty on the plan's dynamics
    inconsistency (default weight 10).
    """

    name = "pointmaze"
    goal_dims = GOAL_DIMS
    min_state_dim = 4  # x, y, vx, vy first: the scorer and the controller read them
    goal_radius = GOAL_RADIUS
    scorers: Mapping[str, Scorer] = {"reward": Scorer(reward_score),
                                     "dynamics": Scorer(dynamics_score, penalty=True)}
    scorer_weights: Mapping[str, float] = {"reward": 1.0, "dynamics": 10.0}
    default_replan = None  # a bundle without --replan plans open loop
    velocity_sources = VELOCITY_SOURCES  # the plan's own, or those its positions imply

    def dataset_ids(self) -> tuple[str, ...]:
        """``ctp/pointmaze/<maze>-v1`` for each maze."""
        return tuple(spec.dataset_id for spec in MAZES.values())

    def owns_dataset(self, dataset_id: str) -> bool:
        """Whether ``dataset_id`` names a PointMaze U-Maze/Medium/Large dataset."""
        try:
            maze_for_dataset(dataset_id)
        except CTPError:
            return False
        return True

    def load(self, dataset_id: str) -> MazeData:
        """The local PointMaze dataset ``dataset_id`` (observations ``[N, 4]``)."""
        return load_maze_dataset(dataset_id)

    def check_spaces(self, dataset_id: str, dataset: Any) -> None:
        """Observation dict of observation (4) / achieved_goal (2) / desired_goal (2), 2-D
        actions."""
        check_maze_spaces(dataset_id, dataset)

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        """Start and goal states ``[B, D]`` (normalised), each pinned whole, at index 0 and
        H - 1 -> ``[B, H, D]`` each."""
        return start_goal_condition(start, goal, horizon, start.shape[1])

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        """Start and goal of normalised windows ``x`` ``[B, H, D]``: the first state, and the
        last state's position with the other dims at the normalised 0 -> ``[B, H, D]`` each."""
        _, horizon, dim = x.shape
        goal = x[:, -1].clone()
        rest = normalizer.normalize(np.zeros(dim))[self.goal_dims:].astype(np.float32)
        goal[:, self.goal_dims:] = torch.from_numpy(rest)
        return self.condition(x[:, 0], goal, horizon)

    def env_names(self) -> tuple[str, ...]:
        """``pointmaze-<maze>`` for each maze."""
        return tuple(spec.env_name for spec in MAZES.values())

    def owns_env(self, env: str) -> bool:
        """``pointmaze-*`` names and the bare maze names (``umaze``)."""
        return env.startswith("pointmaze") or env in MAZES

    def env_name(self, env: str) -> str:
        """``umaze`` or ``pointmaze-umaze`` -> ``pointmaze-umaze``."""
        return get_maze_spec(env).env_name

    def env_for_dataset(self, dataset_id: str) -> str:
        """The maze a dataset was collected in, e.g. ``pointmaze-umaze``."""
        return maze_for_dataset(dataset_id).env_name

    def plan_condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int,
                       normalize: Callable[[torch.Tensor], torch.Tensor]) -> Condition:
        """Normalised start ``[B, D]`` and raw goal positions ``[B, 2]`` -> (mask, value)
        ``[B, H, D]``: the goal pinned at rest at index H - 1."""
        batch, dim = start.shape
        goal_state = torch.cat([goal, goal.new_zeros(batch, dim - goal.shape[1])], dim=-1)
        return self.condition(start, normalize(goal_state), horizon)

    def finish_plans(self, plans: np.ndarray, goal: np.ndarray, goal_radius: float
                     ) -> np.ndarray:
        """Plans ``[E, H, D]`` held at the goal ``[E, 2]`` from the first state within
        ``goal_radius`` on."""
        return hold_after_arrival(plans, goal, goal_radius)

    def controller(self, stride: int, networks: Mapping[str, Any], velocities: str = "plan",
                   aim: int | None = None) -> PlanFollower:
        """Diffuser's tracking controller over the plans' interpolated waypoints (no
        network), aiming for the plan's velocities or those its positions imply (``aim``
        is inverse dynamics', which the planner refuses without one)."""
        return PlanFollower(stride, velocities)

    def make_vector_env(self, env: str, num_envs: int, multi_goal: bool) -> Any:
        """``num_envs`` PointMaze envs: the single-task goal, or Multi2D random goals."""
        from ctp.tasks.pointmaze.maze import make_vector_env

        return make_vector_env(get_maze_spec(env), num_envs, eval_goal=not multi_goal)

    def episode_steps(self, env: str) -> int:
        """300 (umaze), 600 (medium) or 800 (large)."""
        return get_maze_spec(env).episode_steps

    def observe(self, obs: Any) -> Observation:
        """Gymnasium-Robotics observation dicts -> state ``[E, 4]``, goal and position
        ``[E, 2]``."""
        return Observation(obs["observation"], obs["desired_goal"], obs["achieved_goal"])

    def reference_scores(self, env: str) -> tuple[float, float]:
        """D4RL's maze2d-v1 random and expert returns (docs/design.md section 6)."""
        spec = get_maze_spec(env)
        return spec.d4rl_ref_min, spec.d4rl_ref_max

    def plot(self, env: str, episodes: Sequence[Any], path: str, title: str) -> None:
        """Walls, chosen plans and executed paths, one panel per episode."""
        from ctp.tasks.maze_grid import MazeGeometry
        from ctp.tasks.maze_plot import plot_episodes

        plot_episodes(MazeGeometry(get_maze_spec(env).layout), episodes, path, title,
                      GOAL_RADIUS)


POINTMAZE = PointMazeTask()
