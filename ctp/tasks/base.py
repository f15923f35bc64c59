"""What the method needs from an environment family: the ``Task`` interface.

The diffusion maths, networks, trainer, planner and evaluator are written once; each family
(one subpackage of ``ctp.tasks`` each) supplies one object with these members. ``Task`` is what
training needs (datasets and the window condition); ``PlanningTask`` adds what planning and
closed-loop evaluation need (plan conditions, named scorers with default weights, a
controller, envs, reference scores and a plot). A family whose planning parts do not exist yet
registers a ``Task`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from ctp.data.normalizer import Normalizer

Condition = tuple[torch.Tensor, torch.Tensor]  # (mask, value), both [B, H, D]


@dataclass
class StepStream:
    """A dataset as the method sees it: a flat stream of N states in E episodes.

    D, the state width, is the data's (``observations.shape[1]``), never a constant.
    """

    dataset_id: str
    observations: np.ndarray  # float32 [N, D]: the state before each action
    rewards: np.ndarray  # float32 [N]: the reward each step's action earned
    episode_starts: np.ndarray  # int64 [E]: index of each episode's first step
    continuous: bool  # episodes are consecutive segments of one run (windows may cross them)
    ref_min_score: float | None
    ref_max_score: float | None
    # float32 [N, A]: the action taken at each step; None for a dataset without actions
    # (inverse-dynamics training refuses one). Keyword-only, so positional use is unchanged.
    actions: np.ndarray | None = field(default=None, kw_only=True)

    @property
    def num_steps(self) -> int:
        """N, the number of steps in the stream."""
        return int(self.observations.shape[0])

    def episode_bounds(self) -> np.ndarray:
        """int64 ``[E, 2]``: [start, end) of each episode in the stream."""
        ends = np.append(self.episode_starts[1:], self.num_steps)
        return np.stack([self.episode_starts, ends], axis=1)

    def leading_dims(self, n: int) -> StepStream:
        """The same stream with states cut to their leading ``n`` dims ``[N, n]`` (plans of
        a state's first dims, e.g. AntMaze's x, y); everything else shared, not copied."""
        return replace(self, observations=self.observations[:, :n])


class Candidates(NamedTuple):
    """N candidate plans as scorers see them (``ctp.planning.scorers``); all on one device."""

    x: torch.Tensor  # [N, H, D]: the plans as the networks made them (normalised)
    raw: torch.Tensor  # [N, H, D]: the same plans in raw env units
    goal: torch.Tensor  # [N, G]: the raw goals the plans were conditioned on
    mask: torch.Tensor  # [N, H, D]: the plan condition (mask, value)
    value: torch.Tensor
    stride: int  # env steps between plan states
    goal_radius: float  # the planner's success radius
    # The plan index (fractional between states) the controller heads for: its aim in env
    # steps over the stride (1: the next plan state).
    aim_state: float = 1.0


@dataclass(frozen=True)
class Scorer:
    """One named score of candidate plans: ``fn(candidates)`` -> ``[N]``, higher is better.

    ``fn`` runs inside the compiled / CUDA-graph plan step: no host syncs, no branches on
    tensor values. A planner's score is the weighted sum of its scorers' scores.
    """

    fn: Callable[[Candidates], torch.Tensor]
    penalty: bool = False  # fn returns minus a cost: the rule reads "- w*name"


# What a controller aims for (PlannerConfig.velocities): the plan's own velocities, or those
# its positions imply (a task whose controller cannot do that refuses it).
VELOCITY_SOURCES = ("plan", "positions")


class Observation(NamedTuple):
    """One batched env observation, split the way the method reads it."""

    state: np.ndarray  # [E, D]: what plans start from
    goal: np.ndarray  # [E, G]: what plans are conditioned on and scored against
    position: np.ndarray  # [E, P]: what the episode plot draws as the executed path


def hold_after_arrival(plans: np.ndarray, goal_xy: np.ndarray, radius: float) -> np.ndarray:
    """Replace every plan state from the first one within ``radius`` of the goal by the goal
    (x, y; the other dims 0: at rest): the maze tasks reward arriving, so the executed plan
    ends at the goal instead of wandering on. plans ``[E, H, D]`` (x, y first), goal_xy
    ``[E, 2]`` -> ``[E, H, D]``."""
    arrived = np.linalg.norm(plans[..., :2] - goal_xy[:, None, :], axis=-1) <= radius
    first = np.where(arrived.any(axis=1), arrived.argmax(axis=1), plans.shape[1])
    after = np.arange(plans.shape[1])[None, :] >= first[:, None]
    held = plans.copy()
    held[after] = np.concatenate([np.broadcast_to(goal_xy[:, None], plans[..., :2].shape),
                                  np.zeros_like(plans[..., 2:])], axis=-1)[after]
    return held


def interpolate_plan(plan: np.ndarray, stride: int) -> np.ndarray:
    """Plan states ``[E, H, D]`` one every ``stride`` env steps -> ``[E, (H-1)*stride+1, D]``
    waypoints, one per env step, linearly interpolated between plan states."""
    e, h, d = plan.shape
    if stride == 1:
        return plan.copy()
    frac = np.arange(stride) / stride  # [stride]
    a, b = plan[:, :-1, None, :], plan[:, 1:, None, :]
    between = (a + (b - a) * frac[None, None, :, None]).reshape(e, (h - 1) * stride, d)
    return np.concatenate([between, plan[:, -1:, :]], axis=1)


class Controller(Protocol):
    """Turns the current plans of E envs into one action per env step."""

    def set_plans(self, plans: np.ndarray, target: np.ndarray | None = None) -> None:
        """New plans ``[E, H, D]`` (raw env units) made at the current step; ``target``
        ``[E, D]``: a state the planner chose to act toward instead (``target_radius``;
        only controllers of inverse dynamics reading positions accept one)."""

    def act(self, state: np.ndarray) -> np.ndarray:
        """Actions ``[E, A]`` for the current states ``[E, D]``; advances one env step."""


@runtime_checkable
class Task(Protocol):
    """An environment family's datasets and how the method trains on them."""

    name: str

    def dataset_ids(self) -> tuple[str, ...]:
        """The ids ``ctp data generate`` writes for this family."""

    def owns_dataset(self, dataset_id: str) -> bool:
        """Whether ``dataset_id`` is one of this family's datasets (ctp's or a public copy)."""

    def load(self, dataset_id: str) -> StepStream:
        """The local Minari dataset ``dataset_id``, checked (a CTPError names what is wrong)."""

    def check_spaces(self, dataset_id: str, dataset: Any) -> None:
        """Refuse an opened Minari dataset whose spaces do not fit, naming the field."""

    def condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int) -> Condition:
        """The inpainting condition of B trajectories from normalised start states and goal
        states (as :meth:`window_condition` pins them at index H - 1), both ``[B, D]`` ->
        (mask, value) ``[B, H, D]``; graph-safe. Teacher pairs are conditioned with it."""

    def window_condition(self, x: torch.Tensor, normalizer: Normalizer) -> Condition:
        """The inpainting condition of normalised training windows ``x`` ``[B, H, D]``."""


@runtime_checkable
class PlanningTask(Task, Protocol):
    """A ``Task`` that also plans and is evaluated in closed loop."""

    goal_dims: int  # G: width of the goal a plan is conditioned on
    min_state_dim: int  # states must be at least this wide (the scorer reads the leading dims)
    goal_radius: float  # default success radius of the goal scorer
    scorers: Mapping[str, Scorer]  # the task's own scorers by name (generic ones: ctp.planning)
    scorer_weights: Mapping[str, float]  # default weights (scorers not named here: 0)
    default_replan: int | None  # ctp bundle's replan interval when none is given (None: none)
    velocity_sources: tuple[str, ...]  # the VELOCITY_SOURCES its controller can follow

    def env_names(self) -> tuple[str, ...]:
        """The env names of ``ctp plan --env``."""

    def owns_env(self, env: str) -> bool:
        """Whether ``env`` names one of this family's envs (it may still be unknown)."""

    def env_name(self, env: str) -> str:
        """The canonical name of ``env`` (a CTPError if it is no env of this family)."""

    def env_for_dataset(self, dataset_id: str) -> str:
        """The env a planner trained on ``dataset_id`` plans for."""

    def plan_condition(self, start: torch.Tensor, goal: torch.Tensor, horizon: int,
                       normalize: Callable[[torch.Tensor], torch.Tensor]) -> Condition:
        """The condition of B plans: normalised start ``[B, D]``, raw goal ``[B, G]`` ->
        (mask, value) ``[B, H, D]``; graph-safe (no host syncs)."""

    def finish_plans(self, plans: np.ndarray, goal: np.ndarray, goal_radius: float
                     ) -> np.ndarray:
        """The chosen raw plans ``[E, H, D]`` as they are followed, for goals ``[E, G]``."""

    def controller(self, stride: int, networks: Mapping[str, torch.nn.Module],
                   velocities: str = "plan", aim: int | None = None) -> Controller:
        """A fresh controller for plans with one state every ``stride`` env steps; ``networks``
        are the planner file's networks by entry name (e.g. ``invdyn``), for a controller that
        needs one (a CTPError naming what to bundle when it is missing). ``velocities``: the
        planner's ``velocities`` setting, ``plan`` (track the plan as it is) or ``positions``
        (aim for the velocities the plan's positions imply); one not in
        ``velocity_sources`` raises a CTPError. ``aim``: env steps ahead on the plan an
        inverse-dynamics controller heads for (None: its model's k)."""

    def make_vector_env(self, env: str, num_envs: int, multi_goal: bool) -> Any:
        """``num_envs`` copies of ``env`` in one Gymnasium vector env (evaluation goals,
        or a random goal per episode with ``multi_goal``)."""

    def episode_steps(self, env: str) -> int:
        """Env steps of one evaluation episode of ``env``."""

    def observe(self, obs: Any) -> Observation:
        """A batched observation of :meth:`make_vector_env`'s env, split."""

    def reference_scores(self, env: str) -> tuple[float, float]:
        """``env``'s published (D4RL) random and expert returns, for normalised scores."""

    def plot(self, env: str, episodes: Sequence[Any], path: str, title: str) -> None:
        """A picture of evaluated episodes (``ctp.evaluation.evaluate.Episode``) written to
        ``path``."""
