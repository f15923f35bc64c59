"""Gym-MuJoCo locomotion as a task: its datasets and a start-state condition, enough to train
on. Planning on it (an inverse-dynamics controller, a value scorer) comes with the planner."""

from __future__ import annotations

from typing import Any

import torch

from ctp.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.tasks.base import Condition
from ctp.tasks.locomotion.loader import LocomotionData, check_spaces, load_locomotion_dataset
from ctp.tasks.locomotion.spec import KINDS, TASKS, task_for_dataset


class LocomotionTask:
    """Hopper, Walker2d and HalfCheetah datasets (``medium``, ``medium-replay``)."""

    name = "locomotion"

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


LOCOMOTION = LocomotionTask()
