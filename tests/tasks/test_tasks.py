"""The task layer: the registry, the PointMaze task's conditions and scorer, the locomotion
task's start-only condition and envs (its planning: tasks/locomotion/test_locomotion_planning)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctp.data.normalizer import Normalizer
from ctp.tasks import get_task, planning_task, task_for_dataset, task_for_env, task_names
from ctp.tasks.base import Candidates, PlanningTask, Task
from ctp.utils.errors import CTPError


def test_registry_finds_tasks_by_name_dataset_and_env() -> None:
    assert task_names() == ("pointmaze", "locomotion", "antmaze")
    for name in task_names():
        assert isinstance(get_task(name), Task)
    assert task_for_dataset("ctp/pointmaze/medium-v1").name == "pointmaze"
    assert task_for_dataset("D4RL/pointmaze/large-dense-v2").name == "pointmaze"
    assert task_for_dataset("ctp/mujoco/hopper/medium-replay-v1").name == "locomotion"
    assert task_for_dataset("D4RL/antmaze/umaze-v1").name == "antmaze"
    assert task_for_env("pointmaze-large").env_name("large") == "pointmaze-large"
    assert task_for_env("hopper-medium-replay").env_name("hopper-medium-replay") == (
        "hopper-medium-replay")
    for ids in (get_task(name).dataset_ids() for name in task_names()):
        assert all(task_for_dataset(i).owns_dataset(i) for i in ids)


def test_registry_refuses_unknown_names() -> None:
    with pytest.raises(CTPError, match="unknown task 'kitchen'"):
        get_task("kitchen")
    with pytest.raises(CTPError, match="not a dataset id of any task"):
        task_for_dataset("D4RL/kitchen/complete-v2")
    with pytest.raises(CTPError, match="unknown env 'kitchen-mixed'"):
        task_for_env("kitchen-mixed")
    with pytest.raises(CTPError, match="unknown locomotion env 'hopper': expected one of "
                       "hopper-medium, hopper-medium-replay, walker2d-medium"):
        task_for_env("hopper").env_name("hopper")
    with pytest.raises(CTPError, match="unknown maze 'pointmaze-foo'"):
        task_for_env("pointmaze-foo").env_name("pointmaze-foo")


def test_locomotion_plans_from_the_start_state_only() -> None:
    locomotion = planning_task(get_task("locomotion"))
    assert isinstance(locomotion, PlanningTask) and locomotion.goal_dims == 0
    assert locomotion.scorers == {} and locomotion.scorer_weights == {"value": 1.0}
    assert locomotion.env_for_dataset("ctp/mujoco/walker2d/medium-replay-v1") == (
        "walker2d-medium-replay")
    assert locomotion.env_names() == tuple(f"{t}-{k}" for t in ("hopper", "walker2d",
                                                              "halfcheetah")
                                           for k in ("medium", "medium-replay"))
    assert locomotion.reference_scores("halfcheetah-medium") == (-280.178953, 12135.0)
    assert locomotion.episode_steps("hopper-medium") == 1000
    start = torch.randn(3, 11)
    plan_mask, plan_value = locomotion.plan_condition(start, torch.zeros(3, 0), 5, lambda t: t)
    assert plan_mask[:, 0].eq(1).all() and plan_mask[:, 1:].eq(0).all()
    assert torch.equal(plan_value[:, 0], start)
    x = torch.randn(3, 5, 11)
    mask, value = locomotion.window_condition(x, Normalizer.fit(np.zeros((2, 11))))
    assert mask[:, 0].eq(1).all() and mask[:, 1:].eq(0).all()
    assert torch.equal(value[:, 0], x[:, 0]) and value[:, 1:].eq(0).all()
    assert all(torch.equal(a, b) for a, b in
               zip(locomotion.condition(x[:, 0], x[:, -1], 5), (mask, value), strict=True))


def test_pointmaze_conditions_pin_start_and_goal_at_rest() -> None:
    maze = planning_task(get_task("pointmaze"))
    normalizer = Normalizer(np.array([-2.0, -1.0, -3.0, -4.0]), np.array([2.0, 3.0, 5.0, 4.0]))
    x = torch.randn(3, 6, 4)
    mask, value = maze.window_condition(x, normalizer)
    rest = torch.from_numpy(normalizer.normalize(np.zeros(4))[2:].astype(np.float32))
    assert mask[:, [0, -1]].eq(1).all() and mask[:, 1:-1].eq(0).all()
    assert torch.equal(value[:, 0], x[:, 0]) and torch.equal(value[:, -1, :2], x[:, -1, :2])
    assert torch.equal(value[:, -1, 2:], rest.expand(3, 2))
    goal = value[:, -1]
    assert all(torch.equal(a, b) for a, b in
               zip(maze.condition(x[:, 0], goal, 6), (mask, value), strict=True))

    def normalize(t: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(normalizer.normalize(t.double().numpy()).astype(np.float32))

    goal = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]])
    mask, value = maze.plan_condition(x[:, 0], goal, 6, normalize)
    assert mask[:, [0, -1]].eq(1).all() and mask[:, 1:-1].eq(0).all()
    goal_state = normalize(torch.cat([goal, torch.zeros(3, 2)], dim=-1))
    assert torch.equal(value[:, -1], goal_state) and torch.equal(value[:, 0], x[:, 0])


def test_pointmaze_scorer_rewards_reaching_the_goal() -> None:
    maze = planning_task(get_task("pointmaze"))
    still = torch.zeros(2, 8, 4)  # at rest at the origin: dynamics-consistent
    goal = torch.tensor([[0.0, 0.0], [3.0, 3.0]])
    plans = Candidates(still, still, goal, still, still, 4, maze.goal_radius)
    assert maze.scorers["reward"].fn(plans).tolist() == [8.0, 0.0]
    assert maze.scorers["dynamics"].fn(plans).tolist() == [0.0, 0.0]
    assert maze.scorer_weights == {"reward": 1.0, "dynamics": 10.0}
    held = maze.finish_plans(np.ones((1, 4, 4)), np.ones((1, 2)), maze.goal_radius)
    np.testing.assert_array_equal(held[0, :, 2:], 0.0)


def test_planner_files_record_their_task_and_old_ones_read_as_pointmaze(planner_file) -> None:
    from ctp.planning.bundle import load_planner_file
    from ctp.planning.planner import Planner

    payload = load_planner_file(planner_file["planner"])
    assert payload["task"] == "pointmaze"
    planner = Planner(payload)
    assert planner.task is get_task("pointmaze") and planner.env == "pointmaze-umaze"
    assert planner.config.goal_radius == planner.task.goal_radius
    assert planner.scorer_weights() == {"reward": 1.0, "dynamics": 10.0}
    # Files made before the task layer have no "task" entry: they are PointMaze planners.
    legacy = Planner({k: v for k, v in payload.items() if k != "task"})
    assert legacy.task is get_task("pointmaze") and legacy.env == "pointmaze-umaze"
    with pytest.raises(CTPError, match="ctp/pointmaze/umaze-v1: not a locomotion dataset"):
        Planner({**payload, "task": "locomotion"})
    with pytest.raises(CTPError, match="unknown task 'kitchen'"):
        Planner({**payload, "task": "kitchen"})
    with pytest.raises(CTPError, match="ctp/pointmaze/umaze-v1: not an AntMaze dataset id"):
        Planner({**payload, "task": "antmaze"})
