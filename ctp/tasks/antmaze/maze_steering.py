"""The ant controller's last training task: follow the maze solver's directions in a maze.

The open-ground task (``ctp.tasks.antmaze.steering``) teaches a gait and turning, but not the
maze's own demands: 90-degree corners one after another, walls to slide along, no time lost
dithering at a waypoint. Here the ant walks Gymnasium-Robotics' ``AntMaze_*-v4`` with the
diverse map (random goals; a reached goal is replaced), and the direction it is given is the
solver's (``ctp.tasks.antmaze.expert.WaypointSolver``, D4RL's waypoint jitter), as at data
collection. Observation and reward are the open-ground task's: the 27-dim observation with the
direction (in the torso's frame with ``body_frame``), the xy velocity along the commanded
direction plus ``healthy_reward`` while upright minus ``ctrl_cost`` x |a|^2. An episode ends
when the ant flips (its torso's up axis tilts over 120 degrees, or the torso is below 0.2 m:
the maze does not end it, and a flipped ant cannot right itself) or after ``max_steps``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ctp.tasks.antmaze.envs import make_env
from ctp.tasks.antmaze.expert import WaypointSolver
from ctp.tasks.antmaze.spec import get_spec
from ctp.tasks.antmaze.steering import ANT_OBS_DIM, DIRECTION_DIM, direction_obs


def flipped_mask(obs: np.ndarray) -> np.ndarray:
    """bool ``[...]``: whether the ant of each 27-dim observation ``obs [..., 27]`` lies on
    its back: the torso's up axis (from the quaternion at ``obs[..., 1:5]``) tilts over 120
    degrees, or the torso is below 0.2 m."""
    x, y = obs[..., 2], obs[..., 3]
    return (1.0 - 2.0 * (x * x + y * y) < -0.5) | (obs[..., 0] < 0.2)


def flipped(obs: np.ndarray) -> bool:
    """Whether the ant of one 27-dim observation ``obs`` lies on its back."""
    return bool(flipped_mask(obs))


class MazeSteeringAntEnv(gym.Env):
    """The ant in a diverse-map maze, steered by the waypoint solver; observation ``[29]``
    float32, action ``[8]`` in [-1, 1]."""

    metadata = {"render_modes": []}

    def __init__(self, maze: str = "medium", max_steps: int = 500, healthy_reward: float = 1.0,
                 ctrl_cost: float = 0.5, body_frame: bool = True):
        self.spec = get_spec(f"antmaze-{maze}-diverse")
        self.env = make_env(self.spec, evaluation=False, max_episode_steps=10**9)
        self.dt = self.env.unwrapped.ant_env.dt  # s per env step
        self.max_steps, self.body_frame = max_steps, body_frame
        self.healthy_reward, self.ctrl_cost = healthy_reward, ctrl_cost
        self.action_space = gym.spaces.Box(-1.0, 1.0, (8,), np.float32)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, (ANT_OBS_DIM + DIRECTION_DIM,), np.float32)
        self.solver: WaypointSolver | None = None
        self.direction = np.array([1.0, 0.0])
        self.steps = 0
        self._obs: dict[str, np.ndarray] = {}

    def _observe(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._obs = obs
        self.direction = self.solver.direction(obs["achieved_goal"], obs["desired_goal"])
        return direction_obs(obs["observation"], self.direction, self.body_frame)

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=int(self.np_random.integers(2**31)))
        self.solver = WaypointSolver(self.spec, self.np_random)
        self.steps = 0
        return self._observe(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        before = self._obs["achieved_goal"].copy()
        obs, _, _, _, info = self.env.step(action)
        speed = float((obs["achieved_goal"] - before) @ self.direction) / self.dt
        fell = flipped(obs["observation"])
        reward = (speed + self.healthy_reward * (not fell)
                  - self.ctrl_cost * float(np.square(action).sum()))
        info["speed_along"] = speed
        self.steps += 1
        x = self._observe(obs)
        return x, reward, fell, self.steps >= self.max_steps, info

    def close(self) -> None:
        self.env.close()
