"""What is in the Minari data folder: the datasets ctp can train on, and their details.

A dataset is ctp's when a registered task owns its id (``ctp.tasks.task_for_dataset``).
Listing opens each such dataset's HDF5 file and checks its spaces with the task;
``dataset_info`` loads every step through the task, so a torn or foreign dataset is reported,
never passed off as healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ctp.data.minari_io import (
    CONTINUOUS_KEY,
    RANDOM_RETURN_KEY,
    REF_SOURCE_KEY,
    dataset_dir,
    datasets_root,
    env_id_of,
    open_dataset,
)
from ctp.tasks import task_for_dataset
from ctp.tasks.base import PlanningTask, Task
from ctp.utils.errors import CTPError
from ctp.utils.stats import mean_se

V5_NOTE = ("collected on {env} (v5 dynamics, another behaviour policy): not D4RL's data; "
           "compare its scores only with other v5 results")
GOAL_NOTE = ("the ref scores are returns of one evaluation episode with the evaluation goal; "
             "the dataset's episodes run between other goals, so no normalised score is given")


@dataclass
class DatasetInfo:
    """What ``ctp data info`` shows about one local dataset."""

    dataset_id: str
    task: str  # the registered task that owns it, e.g. "pointmaze", "locomotion"
    env_id: str
    episodes: int
    steps: int
    observation_space: str
    action_space: str
    return_mean: float  # mean undiscounted episode return
    return_se: float
    ref_min_score: float | None
    ref_max_score: float | None
    # 100 (return - ref_min) / (ref_max - ref_min); None where the ref scores are not of
    # the dataset's episodes (a goal-conditioned task's: its evaluation goal's, GOAL_NOTE)
    normalized_mean: float | None
    ref_score_source: str
    random_policy_return: float | None
    continuous_episodes: bool  # marked as one run: windows may cross episode boundaries
    note: str
    size_mb: float
    path: str


def scores_per_evaluation_goal(task: Task) -> bool:
    """Whether ``task``'s reference scores are returns of its evaluation task (a goal-
    conditioned family: an episode toward the evaluation goal), not of a dataset episode."""
    return isinstance(task, PlanningTask) and task.goal_dims > 0


def owning_task(dataset_id: str) -> Task | None:
    """The registered task whose dataset ``dataset_id`` is, or None."""
    try:
        return task_for_dataset(dataset_id)
    except CTPError:
        return None


def check_usable(dataset_id: str, task: Task) -> Any:
    """Open the dataset's metadata and HDF5 file and check its spaces -> the opened Minari
    dataset; CTPError if unusable."""
    import h5py

    dataset = open_dataset(dataset_id)
    task.check_spaces(dataset_id, dataset)
    path = dataset_dir(dataset_id) / "data" / "main_data.hdf5"
    try:
        with h5py.File(path, "r") as fh:
            episodes = sum(1 for key in fh if key.startswith("episode_"))
    except OSError as exc:
        raise CTPError(f"{path}: not a readable HDF5 file ({exc})") from None
    if episodes != dataset.total_episodes:
        raise CTPError(f"{path}: holds {episodes} episodes, metadata says "
                       f"{dataset.total_episodes}")
    return dataset


def list_datasets() -> tuple[list[str], dict[str, str]]:
    """(usable dataset ids sorted, {unusable id: why}) in the Minari data folder."""
    root = datasets_root()
    usable, unusable = [], {}
    if not root.exists():
        return usable, unusable
    for meta in sorted(root.rglob("data/metadata.json")):
        if any(part.startswith(".ctp-staging-") for part in meta.parts):
            continue
        dataset_id = str(meta.parent.parent.relative_to(root))
        task = owning_task(dataset_id)
        if task is None:
            continue  # somebody else's dataset: not ours to judge
        try:
            check_usable(dataset_id, task)
        except CTPError as exc:
            unusable[dataset_id] = str(exc)
        else:
            usable.append(dataset_id)
    return usable, unusable


def dataset_info(dataset_id: str) -> DatasetInfo:
    """Details of one local dataset, read in full (every step is loaded and checked)."""
    task = task_for_dataset(dataset_id)
    path = dataset_dir(dataset_id)
    dataset = check_usable(dataset_id, task) if path.exists() else None
    data = task.load(dataset_id)  # a missing dataset: the task's error says how to get it
    meta = dataset.storage.metadata
    returns = mean_se(np.add.reduceat(data.rewards.astype(np.float64), data.episode_starts))
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    env_id = env_id_of(dataset)
    per_goal = scores_per_evaluation_goal(task)
    notes = [V5_NOTE.format(env=env_id) if env_id.endswith("-v5") else "",
             GOAL_NOTE if per_goal and lo is not None else ""]
    return DatasetInfo(
        dataset_id=dataset_id,
        task=task.name,
        env_id=env_id,
        episodes=dataset.total_episodes,
        steps=dataset.total_steps,
        observation_space=str(dataset.observation_space),
        action_space=str(dataset.action_space),
        return_mean=returns["mean"],
        return_se=returns["se"],
        ref_min_score=lo,
        ref_max_score=hi,
        normalized_mean=None if per_goal or lo is None or hi is None or hi == lo
        else 100 * (returns["mean"] - lo) / (hi - lo),
        ref_score_source=str(meta.get(REF_SOURCE_KEY, "dataset metadata")),
        random_policy_return=meta.get(RANDOM_RETURN_KEY),
        continuous_episodes=meta.get(CONTINUOUS_KEY, False) is True,
        note="; ".join(note for note in notes if note),
        size_mb=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20,
        path=str(path),
    )
