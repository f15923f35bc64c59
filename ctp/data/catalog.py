"""What is in the Minari data folder: the datasets ctp can train on, and their details.

Two families are known: PointMaze (``ctp.tasks.pointmaze.loader``) and Gym-MuJoCo locomotion
(``ctp.tasks.locomotion.loader``). Listing opens each dataset's HDF5 file and checks its spaces;
``dataset_info`` reads every step, so a torn or foreign dataset is reported, never passed off
as healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctp.data.minari_io import CONTINUOUS_KEY, dataset_dir, datasets_root, open_dataset
from ctp.errors import CTPError
from ctp.tasks.locomotion.loader import (
    check_spaces,
    env_id_of,
    load_locomotion_dataset,
    missing_locomotion_error,
)
from ctp.tasks.locomotion.spec import RANDOM_RETURN_KEY, REF_SOURCE_KEY, task_for_dataset
from ctp.tasks.pointmaze.loader import check_maze_spaces, load_maze_dataset, missing_dataset_error
from ctp.tasks.pointmaze.spec import maze_for_dataset

V5_NOTE = ("collected on {env} (v5 dynamics, another behaviour policy): not D4RL's data; "
           "compare its scores only with other v5 results")


@dataclass
class DatasetInfo:
    """What ``ctp data info`` shows about one local dataset."""

    dataset_id: str
    family: str  # "pointmaze" | "locomotion"
    env_id: str
    episodes: int
    steps: int
    observation_space: str
    action_space: str
    return_mean: float  # mean undiscounted episode return
    return_se: float
    ref_min_score: float | None
    ref_max_score: float | None
    normalized_mean: float | None  # 100 (return - ref_min) / (ref_max - ref_min)
    ref_score_source: str
    random_policy_return: float | None
    continuous_episodes: bool  # marked as one run: windows may cross episode boundaries
    note: str
    size_mb: float
    path: str


def dataset_family(dataset_id: str) -> str | None:
    """``"pointmaze"``, ``"locomotion"`` or None for an id ctp cannot train on."""
    if task_for_dataset(dataset_id) is not None:
        return "locomotion"
    try:
        maze_for_dataset(dataset_id)
    except CTPError:
        return None
    return "pointmaze"


def check_usable(dataset_id: str) -> None:
    """Open the dataset's metadata and HDF5 file and check its spaces; CTPError if unusable."""
    import h5py

    family = dataset_family(dataset_id)
    if family is None:
        raise CTPError(f"{dataset_id}: not a PointMaze or locomotion dataset id")
    dataset = open_dataset(dataset_id)
    if family == "pointmaze":
        check_maze_spaces(dataset_id, dataset)
    else:
        check_spaces(dataset_id, dataset, task_for_dataset(dataset_id)[0])
    path = dataset_dir(dataset_id) / "data" / "main_data.hdf5"
    try:
        with h5py.File(path, "r") as fh:
            episodes = sum(1 for key in fh if key.startswith("episode_"))
    except OSError as exc:
        raise CTPError(f"{path}: not a readable HDF5 file ({exc})") from None
    if episodes != dataset.total_episodes:
        raise CTPError(f"{path}: holds {episodes} episodes, metadata says "
                       f"{dataset.total_episodes}")


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
        if dataset_family(dataset_id) is None:
            continue  # somebody else's dataset: not ours to judge
        try:
            check_usable(dataset_id)
        except CTPError as exc:
            unusable[dataset_id] = str(exc)
        else:
            usable.append(dataset_id)
    return usable, unusable


def dataset_info(dataset_id: str) -> DatasetInfo:
    """Details of one local dataset, read in full (every step is loaded and checked)."""
    family = dataset_family(dataset_id)
    path = dataset_dir(dataset_id)
    if not path.exists():
        found = task_for_dataset(dataset_id)
        if found is not None:
            raise missing_locomotion_error(dataset_id, *found)
        raise missing_dataset_error(dataset_id)
    if family is None:
        raise CTPError(f"{dataset_id}: not a PointMaze or locomotion dataset id")
    check_usable(dataset_id)
    data = load_maze_dataset(dataset_id) if family == "pointmaze" else (
        load_locomotion_dataset(dataset_id))
    dataset = open_dataset(dataset_id)
    meta = dataset.storage.metadata
    returns = np.add.reduceat(data.rewards.astype(np.float64), data.episode_starts)
    lo, hi = meta.get("ref_min_score"), meta.get("ref_max_score")
    env_id = env_id_of(dataset)
    return DatasetInfo(
        dataset_id=dataset_id,
        family=family,
        env_id=env_id,
        episodes=dataset.total_episodes,
        steps=dataset.total_steps,
        observation_space=str(dataset.observation_space),
        action_space=str(dataset.action_space),
        return_mean=float(returns.mean()),
        return_se=float(returns.std(ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else 0.0,
        ref_min_score=lo,
        ref_max_score=hi,
        normalized_mean=None if lo is None or hi is None or hi == lo
        else float(100 * (returns.mean() - lo) / (hi - lo)),
        ref_score_source=str(meta.get(REF_SOURCE_KEY, "dataset metadata")),
        random_policy_return=meta.get(RANDOM_RETURN_KEY),
        continuous_episodes=meta.get(CONTINUOUS_KEY, False) is True,
        note=V5_NOTE.format(env=env_id) if env_id.endswith("-v5") else "",
        size_mb=sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20,
        path=str(path),
    )
