"""Acting toward a state (``ctp.planning.targets``): which candidate state the goal distance
picks, and how the inverse-dynamics controller walks toward it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ctp.models.inverse_dynamics import InverseDynamics
from ctp.planning.targets import nearest_to_goal
from ctp.tasks.invdyn_controller import STUCK_STEPS, InverseDynamicsController
from ctp.utils.errors import CTPError


class ByY(nn.Module):
    """A "distance" that is not Euclidean: the time to the goal is 10 x |y - goal y|, so the
    choice must follow the network, not the straight line."""

    def forward(self, position: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return 10.0 * (position[:, 1] - goal[:, 1]).abs()


def plans(*states: list[tuple[float, float]]) -> torch.Tensor:
    """One env's candidates ``[1, K, H, 2]`` from K lists of (x, y)."""
    return torch.tensor([list(s) for s in states], dtype=torch.float32)[None]


def test_the_state_nearest_the_goal_within_the_radius_wins() -> None:
    """From (0, 0) toward goal (0, 5), radius 2: (0.5, 1.5) is in reach and rated best;
    (0, 4) is rated better but out of reach; (3, 0.1) is nearer the goal in a straight line
    than some, but the distance network rates it worse."""
    candidates = plans([(0, 0), (1, 0), (0.5, 1.5), (0, 4)],
                       [(0, 0), (1.5, 0.2), (0, 0.5), (3, 0.1)])
    index, state = nearest_to_goal(candidates, torch.zeros(1, 2), torch.tensor([[0.0, 5.0]]),
                                   ByY(), radius=2.0)
    assert index.tolist() == [0]
    torch.testing.assert_close(state, torch.tensor([[0.5, 1.5]]))


def test_the_pinned_start_is_never_chosen() -> None:
    """Index 0 sits on the agent; even where the network rates it best it is skipped."""
    candidates = plans([(0, 5), (0, 1)], [(0, 5), (0, 2)])  # starts rated 0 (at the goal's y)
    index, state = nearest_to_goal(candidates, torch.tensor([[0.0, 5.0]]),
                                   torch.tensor([[0.0, 5.0]]), ByY(), radius=5.0)
    assert index.tolist() == [1]
    torch.testing.assert_close(state, torch.tensor([[0.0, 2.0]]))


def test_with_nothing_in_reach_the_nearest_states_count() -> None:
    """Every state 4+ m away with radius 1: those within radius / 3 of the nearest (4.0 and
    4.2 m) are rated; 6 m is not, though the network prefers it."""
    candidates = plans([(0, 0), (4.0, 0.0), (0.0, -6.0)], [(0, 0), (0.0, 4.2), (9, 9)])
    index, state = nearest_to_goal(candidates, torch.zeros(1, 2), torch.tensor([[0.0, -9.0]]),
                                   ByY(), radius=1.0)
    assert index.tolist() == [0]
    torch.testing.assert_close(state, torch.tensor([[4.0, 0.0]]))


def test_envs_choose_independently_and_nan_is_refused() -> None:
    """Two envs, their own positions and goals; a network rating NaN is a CTPError."""
    one = [[(0, 0), (1, 0)], [(0, 0), (0, 1)]]
    two = [[(5, 5), (5, 4)], [(5, 5), (5, 6)]]
    candidates = torch.tensor([one, two], dtype=torch.float32)  # [2, K=2, H=2, 2]
    index, _ = nearest_to_goal(candidates, torch.tensor([[0.0, 0.0], [5.0, 5.0]]),
                               torch.tensor([[0.0, 3.0], [5.0, 0.0]]), ByY(), radius=2.0)
    assert index.tolist() == [1, 0]

    class Broken(nn.Module):
        def forward(self, position, goal):
            return torch.full(position.shape[:1], float("nan"))

    with pytest.raises(CTPError, match="non-finite"):
        nearest_to_goal(candidates, torch.zeros(2, 2), torch.zeros(2, 2), Broken(), 2.0)


def test_the_controller_asks_its_full_reach_toward_the_target() -> None:
    """With a target, every action until the next plan reads the change toward it stretched to
    the model's reach, from wherever the agent now is."""
    model = InverseDynamics(obs_dim=4, act_dim=2, hidden=(8,), stride=5, target_dims=2,
                            reach=2.0)
    seen: list[torch.Tensor] = []
    model.mlp.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].clone()))
    controller = InverseDynamicsController(model, stride=5)
    plans = np.zeros((1, 3, 2), np.float32)
    controller.set_plans(plans, target=np.array([[3.0, 4.0]], np.float32))
    controller.act(np.zeros((1, 4), np.float32))
    controller.act(np.array([[3.0, 0.0, 0.0, 0.0]], np.float32))
    # The MLP's input ends with the asked change: 2 m toward (3, 4), then 2 m north.
    np.testing.assert_allclose(seen[0][0, -2:].numpy(), [1.2, 1.6], atol=1e-6)
    np.testing.assert_allclose(seen[1][0, -2:].numpy(), [0.0, 2.0], atol=1e-6)
    controller.set_plans(plans)  # a plan without a target: followed as before
    assert controller.heading is None


def test_a_stuck_agent_backs_away_from_its_target_then_heads_back() -> None:
    """Of two envs, the one that stays put for STUCK_STEPS steps is asked its reach straight
    away from its target for ``back_off`` steps, then toward it again; the moving one never."""
    model = InverseDynamics(obs_dim=4, act_dim=2, hidden=(8,), stride=5, target_dims=2,
                            reach=2.0)
    seen: list[torch.Tensor] = []
    model.mlp.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].clone()))
    controller = InverseDynamicsController(model, stride=5, back_off=3)
    plans = np.zeros((2, 3, 2), np.float32)
    target = np.array([[0.0, 10.0], [10.0, 0.0]], np.float32)
    for t in range(STUCK_STEPS + 6):
        controller.set_plans(plans, target)
        state = np.zeros((2, 4), np.float32)
        state[1, 0] = 0.1 * t  # env 1 walks east; env 0 stays wedged
        controller.act(state)
    asked = np.stack([x[:, -2:].numpy() for x in seen])  # [T, E, 2]
    north, south = [0.0, 2.0], [0.0, -2.0]
    np.testing.assert_allclose(asked[:STUCK_STEPS, 0], [north] * STUCK_STEPS, atol=1e-6)
    np.testing.assert_allclose(asked[STUCK_STEPS:STUCK_STEPS + 3, 0], [south] * 3, atol=1e-6)
    np.testing.assert_allclose(asked[STUCK_STEPS + 3:, 0], [north] * 3, atol=1e-6)
    np.testing.assert_allclose(asked[:, 1], [[2.0, 0.0]] * len(asked), atol=1e-6)


def test_a_plan_tracking_controller_refuses_a_target() -> None:
    """PointMaze's controller tracks plans; handed a target state it says so in one line."""
    from ctp.tasks.pointmaze.controller import PlanFollower

    with pytest.raises(CTPError, match="tracks plans"):
        PlanFollower(stride=1).set_plans(np.zeros((1, 3, 4), np.float32),
                                         target=np.zeros((1, 4), np.float32))
