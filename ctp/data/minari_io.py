"""Where Minari keeps datasets, and writing one atomically under its final id."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ctp.errors import CTPError

DEFAULT_ROOT = Path("~/.minari/datasets")
# Dataset metadata flag: the episodes are consecutive segments of one physical run.
CONTINUOUS_KEY = "ctp_continuous_episodes"


def datasets_root() -> Path:
    """Minari's data folder: ``$MINARI_DATASETS_PATH`` when set, else ``~/.minari/datasets``."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    if env is None:
        return DEFAULT_ROOT.expanduser()
    if not env.strip():  # Minari itself fails on it with a traceback
        raise CTPError("MINARI_DATASETS_PATH: set but empty, expected a folder path or unset")
    return Path(env)


def dataset_dir(dataset_id: str) -> Path:
    """The folder a dataset id is stored in."""
    return datasets_root() / dataset_id


def open_dataset(dataset_id: str):
    """``minari.load_dataset`` with any reader failure turned into a one-line CTPError."""
    import minari

    try:
        return minari.load_dataset(dataset_id)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a corrupt dataset
        raise CTPError(
            f"{dataset_dir(dataset_id)}: cannot be read as a Minari dataset ({exc})"
        ) from None


@contextlib.contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari at another data folder for the duration of the block."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


@contextlib.contextmanager
def staged_dataset(dataset_id: str) -> Iterator[None]:
    """Write a dataset in a staging folder, then move it under its final id.

    Inside the block Minari writes into a temporary data folder next to the real one; on
    success the dataset folder (and its namespace metadata, when missing) moves into place
    with one rename, so an interrupted generation never leaves a half-written dataset.
    """
    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ctp-staging-", dir=root))
    try:
        with _minari_root(staging):
            yield
        final = root / dataset_id
        final.parent.mkdir(parents=True, exist_ok=True)
        namespace = dataset_id.split("/")[0]
        ns_meta = staging / namespace / "namespace_metadata.json"
        if ns_meta.exists() and not (root / namespace / "namespace_metadata.json").exists():
            shutil.move(str(ns_meta), root / namespace / "namespace_metadata.json")
        old = staging / "replaced"
        if final.exists():  # --force: move the old dataset aside (one rename) ...
            os.replace(final, old)
        try:
            os.replace(staging / dataset_id, final)
        except BaseException:
            if old.exists():  # ... and put it back if the new one cannot take its place
                os.replace(old, final)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
