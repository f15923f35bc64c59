"""Read a Minari AntMaze dataset into flat float32 arrays.

Works for the datasets ``ctp data generate antmaze-<name>`` writes and for Minari's public
``D4RL/antmaze/<name>-v1`` copies alike: both store Gymnasium-Robotics observation dicts
(``observation`` 27: the ant's joint positions without x, y, then velocities; ``achieved_goal``
x, y; ``desired_goal`` x, y) and 8-dim actions. The state the method sees is x, y followed by
the 27 (29 dims), so positions lead as the maze scorers read them. Episodes are separate runs.

An episode is cut at the ant's first flip (``ctp.tasks.antmaze.maze_steering.flipped_mask``):
an ant on its back cannot right itself, so the rest of the episode is it lying still, which
no plan should pass through and no action model should imitate (26% of ``umaze``'s steps and
32% of ``medium-play``'s as generated here). The Minari files are left whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ctp.data.minari_io import dataset_dir, datasets_root, open_dataset
from ctp.tasks.antmaze.maze_steering import flipped_mask
from ctp.tasks.antmaze.spec import AntMazeSpec, spec_for_dataset
from ctp.tasks.antmaze.steering import ANT_OBS_DIM
from ctp.tasks.base import StepStream
from ctp.utils.errors import CTPError

ACT_DIM = 8
STATE_DIM = 2 + ANT_OBS_DIM


@dataclass
class AntMazeData(StepStream):
    """One AntMaze dataset: observations float32 ``[N, 29]`` (x, y, then the ant's 27),
    actions ``[N, 8]``, goals ``[N, 2]`` (the desired goal at each step), each episode up to
    its first flip."""

    spec: AntMazeSpec
    goals: np.ndarray
    flipped_steps: int = 0  # steps dropped: from each episode's first flip to its end


def check_antmaze_spaces(dataset_id: str, dataset: Any) -> None:
    """Refuse a dataset whose spaces are not AntMaze's, naming the field."""
    import gymnasium as gym

    obs_space, act_space = dataset.observation_space, dataset.action_space
    where = f"{dataset_id}: observation_space"
    if not isinstance(obs_space, gym.spaces.Dict):
        raise CTPError(f"{where}: expected a Dict of observation/achieved_goal/desired_goal")
    for key, dim in (("observation", ANT_OBS_DIM), ("achieved_goal", 2), ("desired_goal", 2)):
        space = obs_space.spaces.get(key)
        if space is None or space.shape != (dim,):
            got = "missing" if space is None else f"shape {space.shape}"
            raise CTPError(f"{where}['{key}']: expected shape ({dim},), got {got}")
    if not isinstance(act_space, gym.spaces.Box) or act_space.shape != (ACT_DIM,):
        raise CTPError(f"{dataset_id}: action_space: expected Box of shape ({ACT_DIM},), got "
                       f"{act_space}")


def _finite(dataset_id: str, episode_id: int, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            raise CTPError(f"{dataset_id}: episode {episode_id} {name} hold {int(bad.sum())} "
                           f"NaN or inf values (first at step {int(np.argwhere(bad)[0][0])}); "
                           "expected finite values")


def load_antmaze_dataset(dataset_id: str) -> AntMazeData:
    """Load a local Minari AntMaze dataset by id (see ``ctp data list``)."""
    spec = spec_for_dataset(dataset_id)
    if not dataset_dir(dataset_id).exists():
        hint = (f"generate it with: ctp data generate {spec.env_name}"
                if dataset_id == spec.dataset_id else "place a copy in the Minari data folder")
        raise CTPError(f"dataset {dataset_id} not found in {datasets_root()}; {hint}")
    dataset = open_dataset(dataset_id)
    check_antmaze_spaces(dataset_id, dataset)
    obs, goals, actions, rewards, starts, n, dropped = [], [], [], [], [], 0, 0
    try:
        episodes = list(dataset.iterate_episodes())
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CTPError(f"{dataset_dir(dataset_id)}: episodes cannot be read ({exc}); expected "
                       "a readable main_data.hdf5 (regenerate the dataset)") from None
    for episode in episodes:
        o, steps = episode.observations, len(episode.actions)
        flips = np.flatnonzero(flipped_mask(np.asarray(o["observation"][:steps])))
        if len(flips):
            dropped += steps - int(flips[0])
            steps = int(flips[0])
        if steps == 0:
            continue
        starts.append(n)
        obs.append(np.concatenate([o["achieved_goal"][:steps], o["observation"][:steps]],
                                  axis=1).astype(np.float32))
        goals.append(o["desired_goal"][:steps].astype(np.float32))
        actions.append(np.asarray(episode.actions[:steps], dtype=np.float32))
        rewards.append(np.asarray(episode.rewards[:steps], dtype=np.float32))
        _finite(dataset_id, episode.id, {"observations": obs[-1], "goals": goals[-1],
                                         "actions": actions[-1], "rewards": rewards[-1]})
        n += steps
    if n == 0:
        raise CTPError(f"{dataset_id}: the dataset holds no steps "
                       f"({dropped} with the ant on its back)")
    meta = dataset.storage.metadata
    return AntMazeData(
        dataset_id=dataset_id, spec=spec, observations=np.concatenate(obs),
        actions=np.concatenate(actions), rewards=np.concatenate(rewards),
        goals=np.concatenate(goals), episode_starts=np.asarray(starts, dtype=np.int64),
        continuous=False, ref_min_score=meta.get("ref_min_score"),
        ref_max_score=meta.get("ref_max_score"), flipped_steps=dropped)
