"""Checks shared by the CLI and the library: option ranges, devices, weights, output paths.

Each check raises :class:`~ctp.utils.errors.CTPError` naming the option, file or field at fault and
what was expected, so the CLI can print it as one line.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctp.utils.errors import CTPError

DEVICE_TYPES = ("cpu", "cuda")
# Integer options: a seed is what numpy, torch and Gymnasium all take (32 bits); a count of
# steps, episodes or items above MAX_COUNT is a typo, not a plan.
MAX_SEED = 2**32 - 1
MAX_COUNT = 10**9
MIN_FREE_MB = 64  # free space an output's disk must have for a command to start writing there
# The largest learning rate: Adam's first step moves a weight by up to lr / (1 - beta1) = 10 lr,
# a float32 scalar, and above ~3.4e37 torch stops with "value cannot be converted to type
# float without overflow". Any lr near it diverges anyway; below it, training stops at its
# first non-finite loss with a one-line error.
MAX_LR = 1e37
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every HDF5 file


def check_options(checks: Iterable[tuple[bool, str, str, Any]]) -> None:
    """Raise for the first ``(ok, option, expected, got)`` whose ``ok`` is False."""
    for ok, option, expected, got in checks:
        if not ok:
            raise CTPError(f"{option}: expected {expected}, got {got}")


def max_threads() -> int:
    """The most CPU threads ``--threads`` takes: four per core."""
    return 4 * (os.cpu_count() or 1)


def int_option(option: str, value: Any, low: int = 1,
               high: int = MAX_COUNT) -> tuple[bool, str, str, Any]:
    """A :func:`check_options` entry for an integer option: ``value`` an int in
    ``low..high`` (the default: a count of steps or episodes; seeds take ``0, MAX_SEED``,
    ``--threads`` ``0, max_threads()``)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return ok, option, f"an int >= {low} and <= {high}", value


def finite(value: float | None) -> bool:
    """True for a finite number (NaN, inf and None are not)."""
    return value is not None and math.isfinite(value)


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """``name`` as a torch device this process can use (cpu, or cuda with a CUDA device)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise CTPError(f"{option}: expected cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CTPError(f"{option}: {name!r}, but this torch build sees no CUDA device "
                       "(torch.cuda.is_available() is False); use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CTPError(f"{option}: {name!r}, but only {torch.cuda.device_count()} CUDA "
                       "device(s) are visible")
    return device


def nonfinite_tensor(state: Mapping[str, Any]) -> str | None:
    """The name of the first floating tensor of ``state`` holding NaN or inf (None: none)."""
    for name, value in state.items():
        if (isinstance(value, torch.Tensor) and value.is_floating_point()
                and not bool(torch.isfinite(value).all())):
            return name
    return None


def check_finite_state(state: Mapping[str, Any], where: str) -> None:
    """Refuse a state dict with NaN or inf in any floating tensor, naming the tensor."""
    name = nonfinite_tensor(state)
    if name is not None:
        raise CTPError(f"{where}: tensor {name!r} holds NaN or inf values")


def load_weights(module: nn.Module, state: Mapping[str, Any], where: str) -> None:
    """``module.load_state_dict(state)`` after checking names, shapes and finiteness."""
    wanted = module.state_dict()
    missing, unexpected = sorted(wanted.keys() - state.keys()), sorted(state.keys() - wanted)
    if missing or unexpected:
        raise CTPError(f"{where}: tensor names differ from the network's "
                       f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for name, tensor in wanted.items():
        got = state[name]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CTPError(f"{where}: tensor {name!r} has shape {shape}, "
                           f"expected {tuple(tensor.shape)}")
    check_finite_state(state, where)
    module.load_state_dict(state)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (through links and relative parts)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_not_input(option: str, out: str | Path | None,
                    inputs: Mapping[str, str | Path | None]) -> None:
    """Refuse an output path that is one of the inputs (``{option: path}``) it would replace."""
    if out is None:
        return
    for name, path in inputs.items():
        if path is not None and same_file(out, path):
            raise CTPError(f"{option}: {out} is the {name} input; writing it would replace "
                           "that file, choose another path")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in the existing ``folder``: tried, since root passes every
    permission check but a read-only file system's."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_writable(option: str, path: Path) -> None:
    """Refuse an output file path that is a folder, in a missing folder, or not writable."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CTPError(f"{option}: {path} is a directory, expected a file path")
    if not parent.is_dir():
        raise CTPError(f"{option}: folder {parent} does not exist")
    if not _can_create_in(parent) or (path.exists() and not os.access(path, os.W_OK)):
        raise CTPError(f"{option}: {path} is not writable")


def check_writable_folder(option: str, folder: Path) -> None:
    """Refuse an output folder that is a file, or that cannot be created or written in."""
    if folder.exists() and not folder.is_dir():
        raise CTPError(f"{option}: {folder} is a file, expected a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise CTPError(f"{option}: cannot create folder {folder} ({existing} is a file)")
    if not _can_create_in(existing):
        raise CTPError(f"{option}: folder {existing} is not writable")


def check_no_run(option: str, folder: Path, advice: str = "choose another") -> None:
    """Refuse a folder that already holds a training run (its ``latest.pt``)."""
    latest = folder / "latest.pt"
    if latest.exists():
        raise CTPError(f"{option}: {folder} already holds a run ({latest}); {advice} {option}")


def _dataset_at(path: Path) -> str | None:
    """What makes ``path`` part of a dataset: the Minari dataset folder (one holding
    data/main_data.hdf5) it lies in, or its being an HDF5 file; None if neither."""
    resolved = path.resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / "data" / "main_data.hdf5").is_file():
            return f"in the Minari dataset folder {folder}"
    if resolved.is_file():
        with resolved.open("rb") as fh:
            if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return "an HDF5 file (a dataset)"
    return None


def check_room(option: str, path: str | Path, need_mb: float = MIN_FREE_MB) -> None:
    """Refuse an output whose disk (that of its nearest existing folder) has under
    ``need_mb`` MB free: not worth starting work whose result could not be written."""
    existing = next(p for p in (Path(path), *Path(path).parents) if p.exists())
    free_mb = shutil.disk_usage(existing if existing.is_dir() else existing.parent).free / 2**20
    if free_mb < need_mb:
        raise CTPError(f"{option}: the disk of {path} has {free_mb:.0f} MB free; expected at "
                       f"least {need_mb:.0f} MB before starting (free some space or write "
                       "elsewhere)")


def check_output(option: str, path: str | Path,
                 inputs: Mapping[str, str | Path | None] | None = None, *,
                 folder: bool = False, need_mb: float = MIN_FREE_MB) -> Path:
    """The check of a path a command writes, made before any work: not one of ``inputs``
    (``{option: path}``), not part of a dataset, writable (a ``folder``: creatable or
    writable; whether it may already hold a run is the caller's, :func:`check_no_run`), and on
    a disk with ``need_mb`` MB free (:func:`check_room`)."""
    path = Path(path)
    check_not_input(option, path, inputs or {})
    dataset = _dataset_at(path)
    if dataset is not None:
        raise CTPError(f"{option}: {path} is {dataset}; writing there would damage it, "
                       "choose another path")
    if folder:
        check_writable_folder(option, path)
    else:
        check_writable(option, path)
    check_room(option, path, need_mb)
    return path
