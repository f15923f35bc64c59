"""The ant controller's training task: walk in a commanded direction on open ground.

OGBench's ``online-ant-xy`` recipe: the observation is the ant's 27-dim D4RL observation (joint
positions without x, y, then velocities) followed by a unit direction ``z``; the reward is the
ant's xy velocity along ``z`` (its displacement along ``z`` per second), plus Gymnasium's Ant
shaping: ``healthy_reward`` per step while upright and minus ``ctrl_cost`` x |a|^2 (without the
first, falling over costs nothing and SAC did not learn to walk in 110k steps). ``z`` starts
within ``turn_range`` of the torso's heading and turns by up to ``turn_range`` (uniformly, either
way) every ``resample_every`` steps: with ``turn_range = pi`` that is a uniformly random
direction, on which SAC learned no gait in 300k steps; a smaller range starts each episode as
Gymnasium's forward-walking Ant and then asks for turns. The body is Gymnasium's
``Ant-v4``, the same ``ant.xml`` that Gymnasium-Robotics' ``AntMaze_*-v4`` mazes place in their
walls, so the controller's dynamics are the maze's. The ant's own healthy-height test ends an
episode when it falls or flips.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ANT_OBS_DIM = 27  # D4RL's ant observation: qpos[2:] (13) + qvel (14)
DIRECTION_DIM = 2
EPISODE_STEPS = 1000


def body_direction(obs: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """World-frame unit ``direction [..., 2]`` turned into the torso's heading frame, from the
    torso quaternion (w, x, y, z) at ``obs[..., 1:5]`` of the 27-dim observation."""
    w, x, y, z = (obs[..., i] for i in range(1, 5))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    cos, sin = np.cos(yaw), np.sin(yaw)
    dx, dy = direction[..., 0], direction[..., 1]
    return np.stack([cos * dx + sin * dy, -sin * dx + cos * dy], axis=-1)


def direction_obs(obs: np.ndarray, direction: np.ndarray, body_frame: bool = False
                  ) -> np.ndarray:
    """The controller's input: ``obs [..., 27]`` and a world-frame unit ``direction [..., 2]``
    (given as is, or in the torso's heading frame with ``body_frame``) -> ``[..., 29]``
    float32."""
    if body_frame:
        direction = body_direction(obs, direction)
    return np.concatenate([obs, direction], axis=-1).astype(np.float32)


class SteeringAntEnv(gym.Env):
    """Ant-v4 on open ground, rewarded for velocity along a direction redrawn every
    ``resample_every`` steps; observation ``[29]`` float32, action ``[8]`` in [-1, 1]."""

    metadata = {"render_modes": []}

    def __init__(self, resample_every: int = 100, max_steps: int = EPISODE_STEPS,
                 healthy_reward: float = 1.0, ctrl_cost: float = 0.5,
                 body_frame: bool = False, turn_range: float = np.pi):
        from gymnasium.envs.mujoco.ant_v4 import AntEnv

        from ctp.tasks.mujoco_compile import models_compiled_in_this_thread

        with models_compiled_in_this_thread():
            self.ant = AntEnv()  # 27-dim observation: x, y excluded, no contact forces
        self.resample_every = resample_every
        self.max_steps = max_steps
        self.healthy_reward, self.ctrl_cost = healthy_reward, ctrl_cost
        self.body_frame = body_frame
        self.turn_range = turn_range
        self.action_space = self.ant.action_space
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, (ANT_OBS_DIM + DIRECTION_DIM,), np.float32)
        self.direction = np.array([1.0, 0.0])
        self.steps = 0

    def _turn(self, angle: float) -> None:
        angle += self.np_random.uniform(-self.turn_range, self.turn_range)
        self.direction = np.array([np.cos(angle), np.sin(angle)])

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        obs, info = self.ant.reset(seed=int(self.np_random.integers(2**31)))
        self.steps = 0
        heading = body_direction(obs, np.array([1.0, 0.0]))  # world +x in the torso's frame
        self._turn(-float(np.arctan2(heading[1], heading[0])))  # around the torso's yaw
        return direction_obs(obs, self.direction, self.body_frame), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        before = self.ant.data.qpos[:2].copy()
        obs, _, terminated, _, info = self.ant.step(action)
        velocity = (self.ant.data.qpos[:2] - before) / self.ant.dt
        speed = float(velocity @ self.direction)
        info["speed_along"] = speed
        reward = (speed + self.healthy_reward * (not terminated)
                  - self.ctrl_cost * float(np.square(action).sum()))
        self.steps += 1
        if self.steps % self.resample_every == 0:
            self._turn(float(np.arctan2(self.direction[1], self.direction[0])))
        truncated = self.steps >= self.max_steps
        x = direction_obs(obs, self.direction, self.body_frame)
        return x, reward, bool(terminated), truncated, info

    def close(self) -> None:
        self.ant.close()
