"""Where Minari keeps datasets, and writing one atomically under its final id."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ctp.utils.errors import CTPError

DEFAULT_ROOT = Path("~/.minari/datasets")
# Metadata keys ctp's generators add beside Minari's own.
CONTINUOUS_KEY = "ctp_continuous_episodes"  # the episodes are segments of one physical run
REF_SOURCE_KEY = "ctp_ref_score_source"  # where ref_min_score / ref_max_score come from
RANDOM_RETURN_KEY = "ctp_random_policy_return"  # a uniform-random policy's mean return


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


def env_id_of(dataset: Any) -> str:
    """The Gymnasium id recorded in a Minari dataset's metadata ("" when absent)."""
    spec = dataset.storage.metadata.get("env_spec")
    try:
        return json.loads(spec)["id"] if spec else ""
    except (TypeError, ValueError, KeyError):
        return ""


def writing(buffers: Sequence[Any], dataset_id: str, progress: bool = True) -> Iterator[Any]:
    """``buffers`` (Minari episode buffers) handed to Minari's writer one by one, with a bar
    counting the steps written: a million-step dataset takes minutes to write."""
    from tqdm import tqdm

    total = sum(len(buffer.rewards) for buffer in buffers)
    with tqdm(total=total, desc=f"write {dataset_id}", unit="step", disable=not progress,
              mininterval=1.0) as bar:
        for buffer in buffers:
            yield buffer
            bar.update(len(buffer.rewards))


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


STAGING_PREFIX = ".ctp-staging-"
REPLACED_SUFFIX = ".ctp-replaced"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    return True


def _clean_leftovers(root: Path, final: Path) -> None:
    """Remove staging folders of dead generations; restore a dataset a crash left aside."""
    for folder in root.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name[len(STAGING_PREFIX):].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    aside = final.with_name(final.name + REPLACED_SUFFIX)
    if aside.exists() and not final.exists():  # killed between --force's two renames
        os.replace(aside, final)


def _move_in(staged: Path, final: Path, force: bool) -> None:
    """Rename ``staged`` to ``final``; with ``force`` the old one is set aside, then dropped."""
    if final.exists() and not force:
        raise CTPError(f"{final}: appeared while this dataset was generated (another "
                       "`ctp data generate`?); pass --force to replace it")
    aside = final.with_name(final.name + REPLACED_SUFFIX)
    if final.exists():  # --force: set the old dataset aside next to it (one rename) ...
        os.replace(final, aside)
    try:
        os.replace(staged, final)
    except BaseException:
        if aside.exists():  # ... and put it back if the new one cannot take its place
            os.replace(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged_dataset(dataset_id: str, force: bool = False) -> Iterator[None]:
    """Write a dataset in a staging folder, then move it under its final id.

    Inside the block Minari writes into a temporary data folder next to the real one; on
    success the dataset folder (and its namespace metadata, when missing) moves into place
    with one rename, so an interrupted generation never leaves a half-written dataset. The
    final id is checked again at that moment (a concurrent generation is refused unless
    ``force``); staging folders of killed generations are removed on the next run, and a
    dataset set aside by a killed ``--force`` is put back.
    """
    root = datasets_root()
    final = root / dataset_id
    try:
        root.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(root, final)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root))
    except OSError as exc:
        raise CTPError(f"{root}: cannot write datasets here ({exc.strerror or exc})") from None
    try:
        with _minari_root(staging):
            yield
        final.parent.mkdir(parents=True, exist_ok=True)
        namespace = dataset_id.split("/")[0]
        ns_meta = staging / namespace / "namespace_metadata.json"
        if ns_meta.exists() and not (root / namespace / "namespace_metadata.json").exists():
            shutil.move(str(ns_meta), root / namespace / "namespace_metadata.json")
        _move_in(staging / dataset_id, final, force)
    except OSError as exc:  # a full disk or a folder made read-only under us
        raise CTPError(f"{root}: writing {dataset_id} failed ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
