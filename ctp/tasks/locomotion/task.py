"""Gym-MuJoCo locomotion as a planning task: its datasets, a start-state condition, the value
scorer as its default score, an inverse-dynamics controller and vectorised ``*-v4`` envs.

Envs are named after the datasets (``hopper-medium``, ``hopper-medium-replay``, ...): one
planner per dataset, evaluated in the dataset's env (``Hopper-v4`` for both hopper ones) with
D4RL's constants for that env. Plans pin only the start state (index 0); nothing else. The task
has no scorer of its own: its default score is the planner file's value network V(plan)
(``ctp.planning.scorers``, "value", weight 1). Actions come from the planner file's inverse
dynamics (``ctp.tasks.invdyn_controller``): ``a = f(observed s_t, plan[1])``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.tasks.base import Condition, Observation, Scorer
from ctp.tasks.invdyn_controller import InverseDynamicsController, invdyn_controller
from ctp.tasks.locomotion.loader import LocomotionData, check_spaces, load_locomotion_dataset
from ctp.tasks.locomotion.spec import (
    DATASET_NAMES,
    KINDS,
    TASKS,
    parse_dataset_name,
    task_for_dataset,
)
from ctp.utils.errors import CTPError

EPISODE_STEPS = 1000  # the *-v4 envs' time limit, D4RL's evaluation episodes


class LocomotionTask:
    """Hopper, Walker2d and HalfCheetah datasets (``medium``, ``medium-replay``)."""

    name = "locomotion"
    goal_dims = 0  # no goal: plans are scored by the value network
    min_state_dim = 1
    goal_radius = 1.0  # unused (no goal scorer); a valid PlannerConfig.goal_radius
    scorers: Mapping[str, Scorer] = {}
    scorer_weights: Mapping[str, float] = {"value": 1.0}
    default_replan = 1  # ctp bundle's replan when none is given: plan at every env step
    velocity_sources = ("plan",)  # the inverse dynamics reads the plan's states as they are

    def dataset_ids(self) -> tuple[str, ...]:
        """``ctp/mujoco/<task>/<kind>-v1`` for each task and kind."""
        return tuple(spec.dataset_id(kind) for spec in TASKS.values() for kind in KINDS)

    def owns_dataset(self, dataset_id: str) -> bool:
        """Whether ``dataset_id`` is a locomotion dataset id, ctp's or Minari's."""
        return task_for_dataset(dataset_id) is not None

    def load(self, dataset_id: str) -> LocomotionData:
        """The dataset's steps (states ``[N, obs_dim]``); windows stay inside episodes."""
        return load_locomotion_dataset(dataset_id)

    def check_spaces(self, dataset_id: str, dataset: Any) -> None:
        """Box observations and actions of the widths of the id's task."""
        check_spaces(dataset_id, dataset, task_for_dataset(dataset_id)[0])

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        """Only the start states ``[B, D]`` pinned (no goal) -> ``[B, H, D]`` each."""
        return start_goal_condition(start, goal, horizon, 0)

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        """Only the first state of windows ``x`` ``[B, H, D]`` pinned -> ``[B, H, D]`` each."""
        return self.condition(x[:, 0], x[:, -1], x.shape[1])

    # ------------------------------------------------------------------------ planning

    def env_names(self) -> tuple[str, ...]:
        """``<task>-<kind>`` for each dataset, e.g. ``hopper-medium``."""
        return DATASET_NAMES

    def owns_env(self, env: str) -> bool:
        """Names that start with a locomotion task (``hopper-...``)."""
        return env.partition("-")[0] in TASKS

    def env_name(self, env: str) -> str:
        """``env`` itself, once checked to be one of :meth:`env_names`."""
        if env not in DATASET_NAMES:
            raise CTPError(f"unknown locomotion env {env!r}: expected one of "
                           f"{', '.join(DATASET_NAMES)} (one per dataset)")
        return env

    def env_for_dataset(self, dataset_id: str) -> str:
        """``ctp/mujoco/hopper/medium-v1`` -> ``hopper-medium``."""
        found = task_for_dataset(dataset_id)
        if found is None:
            raise CTPError(f"{dataset_id}: not a locomotion dataset id")
        return f"{found[0].name}-{found[1]}"

    def plan_condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int,
                       normalize: Callable[[torch.Tensor], torch.Tensor]) -> Condition:
        """Normalised start ``[B, D]`` pinned at index 0; the goal ``[B, 0]`` is empty."""
        return self.condition(start, start, horizon)

    def finish_plans(self, plans: np.ndarray, goal: np.ndarray, goal_radius: float
                     ) -> np.ndarray:
        """The chosen plans as they are (nothing to hold)."""
        return plans

    def controller(self, stride: int, networks: Mapping[str, Any], velocities: str = "plan",
                   aim: int | None = None) -> InverseDynamicsController:
        """``a = f(observed s_t, plan[1])`` with the planner file's inverse dynamics (which
        reads whole states: ``velocities`` other than ``plan`` are refused)."""
        return invdyn_controller(networks, stride, velocities, "locomotion", aim)

    def make_vector_env(self, env: str, num_envs: int, multi_goal: bool) -> Any:
        """``num_envs`` copies of the dataset's ``*-v4`` env (1000-step time limit) stepped
        in one process; seeds come with ``reset``. ``multi_goal`` is refused (no goals)."""
        import gymnasium as gym

        if multi_goal:
            raise CTPError("--multi-goal: locomotion envs have no goal")
        spec, _ = parse_dataset_name(env)
        return gym.vector.SyncVectorEnv([spec.make_env for _ in range(num_envs)])

    def episode_steps(self, env: str) -> int:
        """1000, D4RL's evaluation episodes (earlier when the robot falls)."""
        return EPISODE_STEPS

    def observe(self, obs: Any) -> Observation:
        """Observations ``[E, D]`` are the states; the goal is empty; the plotted "position"
        is the first observation dim (the torso's / root's height)."""
        obs = np.asarray(obs)
        return Observation(obs, np.zeros((len(obs), 0), np.float32), obs[:, :1])

    def reference_scores(self, env: str) -> tuple[float, float]:
        """D4RL's random and expert returns of the env (``spec.TASKS``)."""
        spec, _ = parse_dataset_name(env)
        return spec.ref_min_score, spec.ref_max_score

    def plot(self, env: str, episodes: Sequence[Any], path: str, title: str) -> None:
        """Each episode's return as it accumulates (PNG)."""
        from ctp.tasks.locomotion.curves import plot_return_curves

        plot_return_curves(episodes, path, title, self.reference_scores(env))


LOCOMOTION = LocomotionTask()
