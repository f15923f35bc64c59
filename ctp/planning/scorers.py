"""Composable plan scorers: named scores of candidate plans, combined as a weighted sum.

A scorer is a named callable on a batch of candidates (``ctp.tasks.base.Candidates``: the
normalised plans, the raw plans, the goals, the plan condition) returning scores ``[N]``,
higher is better. A planner's score is ``sum(weight * scorer(candidates))`` over a
``{name: weight}`` mapping (``PlannerConfig.scorers``, a planner file's ``scorers`` entry);
scorers with weight 0 are not evaluated. Two sources of scorers:

- the task's own (``task.scorers``, default weights ``task.scorer_weights``), e.g.
  PointMaze's ``reward`` and ``dynamics``;
- learned ones, generic over tasks (:data:`LEARNED`), each scoring with one network the
  planner file holds, e.g. ``critic``, ``value``, ``distance``. A new learned scorer is one
  entry there, plus its network: a kind in ``ctp.models.builder`` (``build_network``, or an
  MLP's ``load_mlp_network``), a planner-file entry (``ctp.utils.checkpoint.PLANNER_NETWORKS``)
  and a ``ctp bundle`` option (``ctp.planning.bundle``).

Everything here that runs per plan is graph-safe: the terms are resolved once, when the planner
is built, so the plan step is a fixed sequence of tensor ops (torch.compile, CUDA graphs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ctp.tasks.base import Candidates, PlanningTask
from ctp.utils.errors import CTPError
from ctp.utils.validation import finite


@dataclass(frozen=True)
class LearnedScorer:
    """A scorer that needs a network of the planner file (its entry ``network``)."""

    network: str  # planner-file entry, e.g. "critic"
    score: Callable[[nn.Module, Candidates], torch.Tensor]  # (network, candidates) -> [N]
    penalty: bool = False  # score is minus a cost: the rule reads "- w*name"


def _critic_logit(critic: nn.Module, plans: Candidates) -> torch.Tensor:
    """The real-vs-generated critic's logit on the normalised plans and their condition."""
    return critic(plans.x, plans.mask, plans.value)


def _value(value: nn.Module, plans: Candidates) -> torch.Tensor:
    """V(plan) (``ctp.models.value``): the discounted return-to-go the value network predicts
    from the normalised plan and its condition, in the dataset's reward units."""
    return value(plans.x, plans.mask, plans.value)


def _distance(distance: nn.Module, plans: Candidates) -> torch.Tensor:
    """Plan states (of ``stride`` env steps) from the state the controller heads for
    (``aim_state``, interpolated between plan states) to the goal, by the goal distance
    (``ctp.models.distance``: the data's fast-end time between two places); the score is minus
    it, so the candidate that sends the ant nearest the goal along the data's routes wins."""
    last = plans.raw.shape[1] - 1
    low = min(int(plans.aim_state), last)
    frac = plans.aim_state - low
    aimed = plans.raw[:, low]
    if frac > 0 and low < last:
        aimed = aimed + frac * (plans.raw[:, low + 1] - aimed)
    return -distance(aimed, plans.goal) / plans.stride


# Generic scorers, by name; each network's planner-file entry is in
# ctp.utils.checkpoint.PLANNER_NETWORKS and its network kind in ctp.models.builder.build_network.
LEARNED: dict[str, LearnedScorer] = {
    "critic": LearnedScorer("critic", _critic_logit),
    "value": LearnedScorer("value", _value),
    "distance": LearnedScorer("distance", _distance, penalty=True),
}

# PlannerConfig fields / CLI flags that set one scorer's weight.
ALIASES = {"dyn_weight": "dynamics", "critic_weight": "critic"}

Term = tuple[float, Callable[[Candidates], torch.Tensor]]


def offered(task: PlanningTask) -> tuple[str, ...]:
    """The scorer names a planner of ``task`` accepts: the task's, then the learned ones."""
    return tuple(task.scorers) + tuple(name for name in LEARNED if name not in task.scorers)


def check_weights(weights: Any, task: PlanningTask, where: str) -> None:
    """Refuse a weight mapping that is not ``{known scorer name: finite number}``, naming the
    first bad entry."""
    if not isinstance(weights, Mapping):
        raise CTPError(f"{where}: expected a mapping of scorer name to weight, got "
                       f"{type(weights).__name__}")
    names = offered(task)
    for name, weight in weights.items():
        if name not in names:
            raise CTPError(f"{where}: unknown scorer {name!r} for task {task.name!r}: "
                           f"expected one of {', '.join(names)}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not finite(weight):
            raise CTPError(f"{where}: scorer {name!r}: expected a finite weight, got {weight!r}")


def resolve_weights(task: PlanningTask, scorers: Mapping[str, float] | None = None,
                    aliases: Mapping[str, float | None] | None = None,
                    where: str = "scorers") -> dict[str, float]:
    """Every named weight, in :func:`offered` order: the task's defaults, overridden by
    ``scorers``, overridden by the :data:`ALIASES` in ``aliases`` that are not None."""
    given = dict(scorers or {})
    check_weights(given, task, where)
    for flag, name in ALIASES.items():
        value = (aliases or {}).get(flag)
        if value is not None:
            check_weights({name: value}, task, "--" + flag.replace("_", "-"))
            given[name] = value
    merged = {**task.scorer_weights, **given}
    return {name: float(merged[name]) for name in offered(task) if name in merged}


def terms(task: PlanningTask, weights: Mapping[str, float],
          networks: Mapping[str, nn.Module | None], where: str) -> list[Term]:
    """(weight, scorer) of each non-zero weight; a learned scorer whose network the planner
    file lacks is a CTPError."""
    out: list[Term] = []
    for name, weight in weights.items():
        if not weight:
            continue  # not evaluated at all
        if name in task.scorers:
            out.append((weight, task.scorers[name].fn))
            continue
        spec = LEARNED[name]
        network = networks.get(spec.network)
        if network is None:
            raise CTPError(f"{where}: a {name} weight needs a planner file with the "
                           f"{spec.network}")
        out.append((weight, _bind(spec.score, network)))
    return out


def _bind(score: Callable[[nn.Module, Candidates], torch.Tensor], network: nn.Module
          ) -> Callable[[Candidates], torch.Tensor]:
    return lambda plans: score(network, plans)


def weighted_sum(scorers: list[Term], plans: Candidates) -> torch.Tensor:
    """``sum(weight * scorer(plans))`` ``[N]``, in order (zeros without any scorer)."""
    total = None
    for weight, fn in scorers:
        score = fn(plans)
        score = score if weight == 1 else weight * score
        total = score if total is None else total + score
    return total if total is not None else plans.raw.new_zeros(plans.raw.shape[0])


def describe(task: PlanningTask, weights: Mapping[str, float]) -> str:
    """The scoring rule in words, e.g. ``reward - 10*dynamics + 0.5*critic``."""
    text = ""
    for name, weight in weights.items():
        if not weight:
            continue
        spec = task.scorers.get(name) or LEARNED[name]
        coef = -weight if spec.penalty else weight
        if not text:
            text = name if coef == 1 else f"-{name}" if coef == -1 else f"{coef:g}*{name}"
        else:
            text += f" {'-' if coef < 0 else '+'} {abs(coef):g}*{name}"
    return text or "0"
