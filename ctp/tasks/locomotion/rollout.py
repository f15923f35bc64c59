"""Closed-loop returns of a policy in a locomotion env: full 1000-step episodes, seeded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ctp.tasks.locomotion.spec import LocomotionSpec
from ctp.utils.errors import CTPError

Policy = Callable[[np.ndarray], np.ndarray]  # observation [obs_dim] -> action [act_dim]


def rollout_returns(spec: LocomotionSpec, policy: Policy, episodes: int, seed: int,
                    progress: bool = False) -> np.ndarray:
    """Undiscounted returns ``[episodes]`` of ``policy``; episode i resets with seed + i."""
    from tqdm import tqdm

    env = spec.make_env()
    returns = np.zeros(episodes)
    for i in tqdm(range(episodes), desc=f"eval {spec.env_id}", unit="episode",
                  disable=not progress):
        obs, _ = env.reset(seed=seed + i)
        done = False
        while not done:
            action = policy(obs)
            if not np.all(np.isfinite(action)):
                raise CTPError(f"{spec.env_id}: the policy returned a non-finite action")
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[i] += reward
            done = terminated or truncated
    env.close()
    return returns
