"""AntMaze as a task the method trains on: its six datasets and a start + goal-position
condition. It plans nothing yet (``ctp.tasks.planning_task`` refuses it): planning on AntMaze is
the next step of the family."""

from __future__ import annotations

from typing import Any

import torch

from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.tasks.antmaze.loader import AntMazeData, check_antmaze_spaces, load_antmaze_dataset
from ctp.tasks.antmaze.spec import SPECS, spec_for_dataset
from ctp.tasks.base import Condition
from ctp.utils.errors import CTPError

GOAL_DIMS = 2  # the goal is the ant's x, y: the leading two state dims


class AntMazeTask:
    """Gymnasium-Robotics AntMaze (states x, y + the ant's 27; goal x, y)."""

    name = "antmaze"

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


ANTMAZE = AntMazeTask()
