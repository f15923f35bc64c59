"""Gym-MuJoCo locomotion (``ctp.tasks.locomotion``) as a data-only task: its datasets and a
start-state condition, enough to train on. Planning on it (an inverse-dynamics controller, a
value scorer) comes later."""

from __future__ import annotations

import torch

from ctp.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.tasks.base import Condition, StepStream
from ctp.tasks.locomotion.loader import load_locomotion_dataset
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

    def load(self, dataset_id: str) -> StepStream:
        """The dataset's states ``[N, obs_dim]``; windows stay inside episodes."""
        data = load_locomotion_dataset(dataset_id)
        return StepStream(dataset_id=data.dataset_id, observations=data.observations,
                          episode_starts=data.episode_starts, continuous=False,
                          ref_min_score=data.ref_min_score, ref_max_score=data.ref_max_score)

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        """Only the start states ``[B, D]`` pinned (no goal) -> ``[B, H, D]`` each."""
        return start_goal_condition(start, goal, horizon, 0)

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        """Only the first state of windows ``x`` ``[B, H, D]`` pinned -> ``[B, H, D]`` each."""
        return self.condition(x[:, 0], x[:, -1], x.shape[1])


LOCOMOTION = LocomotionTask()
