"""AntMaze as a planning task: its six datasets, a start + goal-position condition, the arrival
scorer, an inverse-dynamics controller, D4RL's success-ending evaluation and the maze plot.

States are x, y followed by the ant's 27 (29 dims); the goal is an x, y. Envs are named after
the datasets (``antmaze-umaze``, ``antmaze-medium-play``, ...): one planner per dataset,
evaluated on its maze's evaluation task (``ctp.tasks.antmaze.spec``), where an episode ends at
the first step within 0.45 m of the goal with return 1 (else 0 after 700 / 1000 steps), so
D4RL's constants 0 / 1 make the score 100 x the success rate. Plans pin the start state whole
at index 0 and the goal's x, y at index H - 1, as training windows pin their own last x, y.
Actions come from the planner file's inverse dynamics (``ctp.tasks.invdyn_controller``):
``a = f(observed s_t, plan state k env steps ahead)``, learned from the dataset only; the
data-generating controller and its maze solver are never part of a planner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.kernels import goal_reward
from ctp.tasks.antmaze.loader import AntMazeData, check_antmaze_spaces, load_antmaze_dataset
from ctp.tasks.antmaze.spec import (
    CELL_SIZE,
    DATASET_NAMES,
    GOAL_RADIUS,
    REF_MAX_SCORE,
    REF_MIN_SCORE,
    SPECS,
    get_spec,
    spec_for_dataset,
)
from ctp.tasks.base import Candidates, Condition, Observation, Scorer, hold_after_arrival
from ctp.tasks.invdyn_controller import InverseDynamicsController, invdyn_controller
from ctp.utils.errors import CTPError

GOAL_DIMS = 2  # the goal is the ant's x, y: the leading two state dims


def reward_score(plans: Candidates) -> torch.Tensor:
    """Plan states from the plan's first arrival within the goal radius to its end (x, y)."""
    return goal_reward(plans.raw, plans.goal, goal_radius=plans.goal_radius)


class AntMazeTask:
    """Gymnasium-Robotics AntMaze (states x, y + the ant's 27; goal x, y).

    Scorers: ``reward``, the arrival score of PointMaze (default weight 1); learned ones
    (``ctp.planning.scorers``) by the planner file's weights.
    """

    name = "antmaze"
    goal_dims = GOAL_DIMS
    min_state_dim = GOAL_DIMS  # x, y first: the scorer reads them
    goal_radius = GOAL_RADIUS
    scorers: Mapping[str, Scorer] = {"reward": Scorer(reward_score)}
    scorer_weights: Mapping[str, float] = {"reward": 1.0}
    default_replan = 1  # ctp bundle's replan when none is given: plan at every env step
    velocity_sources = ("plan",)  # the inverse dynamics reads the plan's states as they are

    def dataset_ids(self) -> tuple[str, ...]:
        """``ctp/antmaze/<name>-v1`` for each of the six datasets."""
        return tuple(spec.dataset_id for spec in SPECS.values())

    def owns_dataset(self, dataset_id: str) -> bool:
        """Whether ``dataset_id`` names an AntMaze dataset (ctp's or a ``D4RL/antmaze`` copy)."""
        try:
            spec_for_dataset(dataset_id)
        except CTPError:
            return False
        return True

    def load(self, dataset_id: str) -> AntMazeData:
        """The local AntMaze dataset ``dataset_id`` (observations ``[N, 29]``)."""
        return load_antmaze_dataset(dataset_id)

    def check_spaces(self, dataset_id: str, dataset: Any) -> None:
        """Observation dict of observation (27) / achieved_goal (2) / desired_goal (2), 8-D
        actions."""
        check_antmaze_spaces(dataset_id, dataset)

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        """Start states ``[B, D]`` pinned whole at index 0, the goal's x, y at H - 1 ->
        ``[B, H, D]`` each."""
        return start_goal_condition(start, goal, horizon, GOAL_DIMS)

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        """The first state and the last state's x, y of normalised windows ``x [B, H, D]``."""
        return self.condition(x[:, 0], x[:, -1], x.shape[1])

    # ------------------------------------------------------------------------ planning

    def env_names(self) -> tuple[str, ...]:
        """One env per dataset: ``antmaze-umaze``, ``antmaze-medium-play``, ..."""
        return DATASET_NAMES

    def owns_env(self, env: str) -> bool:
        """Names that start with ``antmaze``."""
        return env.startswith("antmaze")

    def env_name(self, env: str) -> str:
        """``env`` itself, once checked to be one of :meth:`env_names`."""
        if env not in DATASET_NAMES:
            raise CTPError(f"unknown AntMaze env {env!r}: expected one of "
                           f"{', '.join(DATASET_NAMES)} (one per dataset)")
        return env

    def env_for_dataset(self, dataset_id: str) -> str:
        """``ctp/antmaze/medium-play-v1`` (or Minari's ``D4RL/antmaze/medium-play-v1``) ->
        ``antmaze-medium-play``."""
        return spec_for_dataset(dataset_id).env_name

    def plan_condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int,
                       normalize: Callable[[torch.Tensor], torch.Tensor]) -> Condition:
        """Normalised start ``[B, D]`` and raw goal positions ``[B, 2]`` -> (mask, value)
        ``[B, H, D]``: the goal's normalised x, y at index H - 1."""
        batch, dim = start.shape
        goal_state = torch.cat([goal, goal.new_zeros(batch, dim - goal.shape[1])], dim=-1)
        return self.condition(start, normalize(goal_state), horizon)

    def finish_plans(self, plans: np.ndarray, goal: np.ndarray, goal_radius: float
                     ) -> np.ndarray:
        """Plans ``[E, H, D]`` held at the goal ``[E, 2]`` from their first state within
        ``goal_radius`` on: a plan pinned to end at the goal 620 steps on may arrive early and
        wander; the ant should stop at its arrival (the episode ends there)."""
        return hold_after_arrival(plans, goal, goal_radius)

    def controller(self, stride: int, networks: Mapping[str, Any], velocities: str = "plan",
                   aim: int | None = None, back_off: int = 0) -> InverseDynamicsController:
        """``a = f(observed s_t, the plan aim env steps ahead)`` (``aim`` None: the model's
        k) with the planner file's inverse dynamics, which reads the target's x, y
        (``velocities`` other than ``plan`` are refused); a stuck ant backs away from its
        chosen state ``back_off`` steps (0: never)."""
        return invdyn_controller(networks, stride, velocities, "AntMaze", aim, back_off)

    def make_vector_env(self, env: str, num_envs: int, multi_goal: bool) -> Any:
        """``num_envs`` envs of the dataset's evaluation task, each ending at its first step
        within 0.45 m of the goal; ``multi_goal`` is refused (one evaluation goal per maze)."""
        from ctp.tasks.antmaze.envs import make_vector_env

        if multi_goal:
            raise CTPError("--multi-goal: AntMaze is evaluated on its maze's one evaluation "
                           "task (D4RL's reset and goal cells)")
        return make_vector_env(get_spec(self.env_name(env)), num_envs, stop_at_goal=True)

    def episode_steps(self, env: str) -> int:
        """700 (umaze) or 1000 (medium, large); earlier on success."""
        return get_spec(self.env_name(env)).episode_steps

    def observe(self, obs: Any) -> Observation:
        """Observation dicts -> state ``[E, 29]`` (x, y, then the ant's 27), goal and
        position ``[E, 2]``."""
        xy = np.asarray(obs["achieved_goal"], dtype=np.float32)
        state = np.concatenate([xy, np.asarray(obs["observation"], dtype=np.float32)], axis=1)
        return Observation(state, np.asarray(obs["desired_goal"], dtype=np.float32), xy)

    def reference_scores(self, env: str) -> tuple[float, float]:
        """D4RL's AntMaze constants 0 / 1: the score is 100 x the success rate."""
        self.env_name(env)
        return REF_MIN_SCORE, REF_MAX_SCORE

    def plot(self, env: str, episodes: Sequence[Any], path: str, title: str) -> None:
        """Walls, chosen plans and the ant's path, one panel per episode (PNG)."""
        from ctp.tasks.maze_grid import MazeGeometry
        from ctp.tasks.maze_plot import plot_episodes

        geometry = MazeGeometry(get_spec(self.env_name(env)).layout, CELL_SIZE)
        plot_episodes(geometry, episodes, path, title, GOAL_RADIUS)


ANTMAZE = AntMazeTask()
