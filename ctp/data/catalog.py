"""What is in the Minari data folder: PointMaze datasets usable by ctp, and their details."""

from __future__ import annotations

from dataclasses import dataclass

from ctp.data.loader import missing_dataset_error
from ctp.data.minari_io import CONTINUOUS_KEY, dataset_dir, datasets_root
from ctp.envs.specs import maze_for_dataset
from ctp.errors import CTPError


@dataclass
class DatasetInfo:
    """What ``ctp data info`` shows about one local dataset."""

    dataset_id: str
    episodes: int
    steps: int
    observation_space: str
    action_space: str
    ref_min_score: float | None
    ref_max_score: float | None
    continuous_episodes: bool  # marked as one run: windows may cross episode boundaries
    size_mb: float
    path: str


def _is_maze_dataset(dataset_id: str) -> bool:
    try:
        maze_for_dataset(dataset_id)
    except CTPError:
        return False
    return True


def list_maze_datasets() -> list[str]:
    """Ids of local datasets ctp can train on (PointMaze U-Maze/Medium/Large), sorted."""
    root = datasets_root()
    if not root.exists():
        return []
    ids = []
    for meta in root.rglob("data/metadata.json"):
        dataset_id = str(meta.parent.parent.relative_to(root))
        if not any(part.startswith(".ctp-staging-") for part in meta.parts) and _is_maze_dataset(
            dataset_id
        ):
            ids.append(dataset_id)
    return sorted(ids)


def dataset_info(dataset_id: str) -> DatasetInfo:
    """Episodes, steps, spaces, reference scores and size on disk of one local dataset."""
    import minari

    path = dataset_dir(dataset_id)
    if not path.exists():
        raise missing_dataset_error(dataset_id)
    try:
        dataset = minari.load_dataset(dataset_id)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt dataset
        raise CTPError(f"{path}: cannot be read as a Minari dataset ({exc})") from None
    meta = dataset.storage.metadata
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return DatasetInfo(
        dataset_id=dataset_id,
        episodes=dataset.total_episodes,
        steps=dataset.total_steps,
        observation_space=str(dataset.observation_space),
        action_space=str(dataset.action_space),
        ref_min_score=meta.get("ref_min_score"),
        ref_max_score=meta.get("ref_max_score"),
        continuous_episodes=meta.get(CONTINUOUS_KEY, False) is True,
        size_mb=size / 2**20,
        path=str(path),
    )
