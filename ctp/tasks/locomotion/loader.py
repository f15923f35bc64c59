"""Read a Minari locomotion dataset (ctp's or a public ``mujoco/*`` copy) into flat arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctp.data.minari_io import dataset_dir, datasets_root, env_id_of, open_dataset
from ctp.tasks.base import StepStream
from ctp.tasks.locomotion.spec import LocomotionSpec, task_for_dataset
from ctp.utils.errors import CTPError


@dataclass
class LocomotionData(StepStream):
    """One locomotion dataset as a flat step stream of N steps in E episodes; observations
    float32 ``[N, obs_dim]``, actions float32 ``[N, act_dim]`` (always set). Episodes are
    independent (``continuous`` is False)."""

    task: LocomotionSpec
    env_id: str  # the env the data was collected in, e.g. "Hopper-v4" (public copies: v5)
    terminals: np.ndarray  # bool [N]: the env terminated after this step

    def episode_returns(self) -> np.ndarray:
        """float64 ``[E]``: the undiscounted return of each episode."""
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)


def missing_locomotion_error(dataset_id: str, task: LocomotionSpec, kind: str) -> CTPError:
    """The error for a locomotion dataset that is not on disk, with how to get it."""
    if dataset_id == task.dataset_id(kind):
        hint = f"generate it with: ctp data generate {task.name}-{kind}"
    else:
        hint = "place a copy in the Minari data folder"
    return CTPError(f"dataset {dataset_id} not found in {datasets_root()}; {hint}")


def check_spaces(dataset_id: str, dataset, task: LocomotionSpec) -> None:
    """Refuse a dataset whose spaces do not fit ``task``, naming the field."""
    import gymnasium as gym

    obs, act = dataset.observation_space, dataset.action_space
    if not isinstance(obs, gym.spaces.Box) or obs.shape != (task.obs_dim,):
        raise CTPError(f"{dataset_id}: observation_space: expected Box of shape "
                       f"({task.obs_dim},) for {task.name}, got {obs}")
    if not isinstance(act, gym.spaces.Box) or act.shape != (task.act_dim,):
        raise CTPError(f"{dataset_id}: action_space: expected Box of shape "
                       f"({task.act_dim},) for {task.name}, got {act}")


def load_locomotion_dataset(dataset_id: str) -> LocomotionData:
    """Load a local Minari locomotion dataset by id (see ``ctp data list``)."""
    found = task_for_dataset(dataset_id)
    if found is None:
        raise CTPError(f"{dataset_id}: not a locomotion dataset id (expected "
                       "ctp/mujoco/<task>/<kind>-v1 or mujoco/<task>/<kind>-v0)")
    task, kind = found
    if not dataset_dir(dataset_id).exists():
        raise missing_locomotion_error(dataset_id, task, kind)
    dataset = open_dataset(dataset_id)
    check_spaces(dataset_id, dataset, task)
    obs, actions, rewards, terminals, starts, n = [], [], [], [], [], 0
    for episode in dataset.iterate_episodes():
        steps = len(episode.actions)
        starts.append(n)
        obs.append(np.asarray(episode.observations[:steps], dtype=np.float32))
        actions.append(np.asarray(episode.actions, dtype=np.float32))
        rewards.append(np.asarray(episode.rewards, dtype=np.float32))
        terminals.append(np.asarray(episode.terminations, dtype=bool))
        n += steps
    if n == 0:
        raise CTPError(f"{dataset_id}: the dataset holds no steps")
    data = LocomotionData(
        dataset_id=dataset_id, task=task, env_id=env_id_of(dataset),
        observations=np.concatenate(obs), actions=np.concatenate(actions),
        rewards=np.concatenate(rewards), terminals=np.concatenate(terminals),
        episode_starts=np.asarray(starts, dtype=np.int64), continuous=False,
        ref_min_score=dataset.storage.metadata.get("ref_min_score"),
        ref_max_score=dataset.storage.metadata.get("ref_max_score"),
    )
    for field in ("observations", "actions", "rewards"):
        bad = ~np.isfinite(getattr(data, field))
        if bad.any():
            step = int(np.flatnonzero(bad.reshape(n, -1).any(axis=1))[0])
            raise CTPError(f"{dataset_id}: {field} holds NaN or inf (first at step {step})")
    return data
