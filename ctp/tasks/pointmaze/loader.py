"""Read a Minari PointMaze dataset into flat float32 arrays.

Works for the datasets ``ctp data generate`` writes and for real ``D4RL/pointmaze/*-v2``
copies alike: both store Gymnasium-Robotics observation dicts (``observation`` = x, y, vx, vy;
``achieved_goal``; ``desired_goal``) and 2-D actions. A dataset counts as one continuous run
(windows may cross its episode boundaries) only when its metadata says so
(``CONTINUOUS_KEY``, written by ``ctp data generate``) and every episode starts in the state the
previous one ended in; any other dataset is windowed inside its episodes only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ctp.data.minari_io import CONTINUOUS_KEY, dataset_dir, datasets_root
from ctp.tasks.base import StepStream
from ctp.tasks.pointmaze.spec import MazeSpec, get_maze_spec, maze_for_dataset
from ctp.utils.errors import CTPError


@dataclass
class MazeData(StepStream):
    """One PointMaze dataset as a flat step stream of N steps in E episodes; observations
    float32 ``[N, 4]``: x, y, vx, vy before each action; actions float32 ``[N, 2]`` (always
    set)."""

    maze: MazeSpec
    goals: np.ndarray  # float32 [N, 2]: desired goal at each step


def check_maze_spaces(dataset_id: str, dataset) -> None:
    """Refuse a dataset whose spaces are not PointMaze's, naming the field."""
    import gymnasium as gym

    obs_space, act_space = dataset.observation_space, dataset.action_space
    where = f"{dataset_id}: observation_space"
    if not isinstance(obs_space, gym.spaces.Dict):
        raise CTPError(f"{where}: expected a Dict of observation/achieved_goal/desired_goal")
    for key, dim in (("observation", 4), ("achieved_goal", 2), ("desired_goal", 2)):
        space = obs_space.spaces.get(key)
        if space is None or space.shape != (dim,):
            got = "missing" if space is None else f"shape {space.shape}"
            raise CTPError(f"{where}['{key}']: expected shape ({dim},), got {got}")
    if not isinstance(act_space, gym.spaces.Box) or act_space.shape != (2,):
        raise CTPError(f"{dataset_id}: action_space: expected Box of shape (2,), got {act_space}")


def missing_dataset_error(dataset_id: str) -> CTPError:
    """The error for a dataset that is not on disk, with the command that generates it."""
    where = datasets_root()
    try:
        maze = maze_for_dataset(dataset_id)
    except CTPError:
        return CTPError(f"dataset {dataset_id} not found in {where} (see: ctp data list)")
    if dataset_id == maze.dataset_id:
        hint = f"generate it with: ctp data generate {maze.env_name}"
    else:
        hint = "place a copy in the Minari data folder"
    return CTPError(f"dataset {dataset_id} not found in {where}; {hint}")


def _episodes(dataset_id: str, dataset) -> Iterator:
    """The dataset's episodes; a reader failure (a truncated, empty or foreign
    ``main_data.hdf5``) is a CTPError naming the dataset folder."""
    try:
        yield from dataset.iterate_episodes()
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CTPError(f"{dataset_dir(dataset_id)}: episodes cannot be read ({exc}); "
                       "expected a readable main_data.hdf5 (regenerate the dataset)") from None


def _check_finite(dataset_id: str, episode_id: int, arrays: dict[str, np.ndarray]) -> None:
    """Refuse NaN or inf in one episode's arrays, naming the episode, field and first step."""
    for name, arr in arrays.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            raise CTPError(
                f"{dataset_id}: episode {episode_id} {name} hold {int(bad.sum())} NaN or inf "
                f"values (first at step {int(np.argwhere(bad)[0][0])}); expected finite values"
            )


def load_maze_dataset(dataset_id: str) -> MazeData:
    """Load a local Minari PointMaze dataset by id (see ``ctp data list``)."""
    import minari

    maze = maze_for_dataset(dataset_id)
    if not dataset_dir(dataset_id).exists():
        raise missing_dataset_error(dataset_id)
    try:
        dataset = minari.load_dataset(dataset_id)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt dataset
        raise CTPError(
            f"{dataset_dir(dataset_id)}: cannot be read as a Minari dataset ({exc})"
        ) from None
    check_maze_spaces(dataset_id, dataset)
    meta = dataset.storage.metadata
    continuous = meta.get(CONTINUOUS_KEY, False) is True
    obs, goals, actions, rewards, starts = [], [], [], [], []
    prev_last, n = None, 0
    for episode in _episodes(dataset_id, dataset):
        o = episode.observations
        steps = len(episode.actions)
        if continuous and prev_last is not None and not np.array_equal(
            prev_last, o["observation"][0]
        ):
            raise CTPError(
                f"{dataset_id}: metadata '{CONTINUOUS_KEY}' says the episodes form one run, but "
                f"episode {episode.id} does not start where the previous one ended; expected "
                "matching boundary states (regenerate the dataset)"
            )
        starts.append(n)
        # float32 copies right away: the episode's float64 arrays are freed as we go.
        obs.append(o["observation"][:steps].astype(np.float32))
        goals.append(o["desired_goal"][:steps].astype(np.float32))
        actions.append(np.asarray(episode.actions, dtype=np.float32))
        rewards.append(np.asarray(episode.rewards, dtype=np.float32))
        _check_finite(dataset_id, episode.id, {"observations": obs[-1], "goals": goals[-1],
                                               "actions": actions[-1], "rewards": rewards[-1]})
        prev_last = o["observation"][steps].copy()
        n += steps
    if n == 0:
        raise CTPError(f"{dataset_id}: the dataset holds no steps")
    return MazeData(
        dataset_id=dataset_id,
        maze=get_maze_spec(maze.name),
        observations=np.concatenate(obs),
        actions=np.concatenate(actions),
        rewards=np.concatenate(rewards),
        goals=np.concatenate(goals),
        episode_starts=np.asarray(starts, dtype=np.int64),
        continuous=continuous,
        ref_min_score=meta.get("ref_min_score"),
        ref_max_score=meta.get("ref_max_score"),
    )
