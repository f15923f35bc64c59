"""A toy task (7-dim states, no goal) end to end: teacher -> student -> planner file ->
closed-loop evaluation, through the task interface alone (no PointMaze code involved)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ctp.data.conditioning import start_goal_condition
from ctp.data.normalizer import Normalizer
from ctp.tasks import registry
from ctp.tasks.base import Condition, Observation, PlanningTask, Scorer, StepStream

DIM = 7
DATASET = "toy/drift-v0"
ENV = "toy-drift"


class DriftEnv(gym.Env):
    """States drift by the action in their first two dims; reward -|state[:2]|."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (DIM,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1, 1, DIM).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        self.state[:2] += 0.1 * np.asarray(action, np.float32)
        return self.state.copy(), -float(np.abs(self.state[:2]).sum()), False, False, {}


class ToyController:
    """Steps towards the plan's next state."""

    def set_plans(self, plans: np.ndarray, target: np.ndarray | None = None) -> None:
        self.plans = plans

    def act(self, state: np.ndarray) -> np.ndarray:
        return np.clip(self.plans[:, 1, :2] - state[:, :2], -1.0, 1.0)


class ToyTask:
    """Start-state conditions, a keep-still scorer, no goal."""

    name = "toy"
    goal_dims = 0
    min_state_dim = 2
    goal_radius = 1.0
    scorers: Mapping[str, Scorer] = {
        "distance": Scorer(lambda plans: plans.raw[..., :2].norm(dim=-1).sum(dim=1).neg(),
                           penalty=True)}
    scorer_weights: Mapping[str, float] = {"distance": 1.0}
    default_replan = None
    velocity_sources = ("plan",)

    def dataset_ids(self) -> tuple[str, ...]:
        return (DATASET,)

    def owns_dataset(self, dataset_id: str) -> bool:
        return dataset_id == DATASET

    def load(self, dataset_id: str) -> StepStream:
        rng = np.random.default_rng(0)
        steps = rng.normal(scale=0.05, size=(400, DIM)).astype(np.float32)
        return StepStream(dataset_id, np.cumsum(steps, axis=0), np.zeros(400, np.float32),
                          np.array([0, 200]), False, None, None)

    def check_spaces(self, dataset_id: str, dataset) -> None:
        raise AssertionError("the toy data is made in memory, never opened from Minari")

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        return start_goal_condition(start, goal, horizon, 0)

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        return self.condition(x[:, 0], x[:, -1], x.shape[1])

    def env_names(self) -> tuple[str, ...]:
        return (ENV,)

    def owns_env(self, env: str) -> bool:
        return env == ENV

    def env_name(self, env: str) -> str:
        return env

    def env_for_dataset(self, dataset_id: str) -> str:
        return ENV

    def plan_condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int,
                       normalize: Callable[[torch.Tensor], torch.Tensor]) -> Condition:
        return self.condition(start, start, horizon)

    def finish_plans(self, plans: np.ndarray, goal: np.ndarray, goal_radius: float
                     ) -> np.ndarray:
        return plans

    def controller(self, stride: int, networks, velocities: str = "plan",
                   aim: int | None = None) -> ToyController:
        return ToyController()

    def make_vector_env(self, env: str, num_envs: int, multi_goal: bool) -> Any:
        return gym.vector.SyncVectorEnv([DriftEnv for _ in range(num_envs)])

    def episode_steps(self, env: str) -> int:
        return 12

    def observe(self, obs: Any) -> Observation:
        return Observation(obs, np.zeros((len(obs), 0), np.float32), obs[:, :2])

    def reference_scores(self, env: str) -> tuple[float, float]:
        return -24.0, 0.0

    def plot(self, env: str, episodes: Sequence[Any], path: str, title: str) -> None:
        raise AssertionError("not plotted")


def test_toy_task_trains_plans_and_evaluates(tmp_path, monkeypatch) -> None:
    from ctp.evaluation.evaluate import EvalConfig, evaluate
    from ctp.planning.bundle import ExportConfig, export_planner, load_planner_file
    from ctp.planning.config import PlannerConfig
    from ctp.training.config import TrainConfig
    from ctp.training.loop import train

    toy = ToyTask()
    assert isinstance(toy, PlanningTask)
    monkeypatch.setitem(registry(), toy.name, toy)
    common = dict(dataset_id=DATASET, horizon=8, stride=2, dim=16, dim_mults=(1, 2),
                  batch_size=8, steps=3, progress=False)
    teacher = train(TrainConfig(kind="teacher", out_dir=str(tmp_path / "t"), **common)).latest
    student = train(TrainConfig(kind="ctm", teacher=str(teacher), out_dir=str(tmp_path / "c"),
                                **common)).latest
    path = export_planner(ExportConfig(str(student), str(tmp_path / "planner.pt"),
                                       str(teacher), defaults={"candidates": 4, "replan": 4}))
    assert load_planner_file(path)["task"] == "toy"
    result = evaluate(EvalConfig(env=ENV, checkpoint=str(path), episodes=2, num_envs=2,
                                 replan=4, planner=PlannerConfig(candidates=4),
                                 progress=False))
    assert result["env"] == ENV and result["episodes"] == 2 and result["horizon"] == 8
    assert result["scorer"] == "-distance"
    assert np.isfinite(result["return"]["mean"]) and result["normalized"] is None
    assert result["latency_ms"]["plans"] == 3  # plans at steps 0, 4 and 8
