"""Checks shared by the CLI and the library: option ranges, devices, weights, output paths.

Each check raises :class:`~ctp.utils.errors.CTPError` naming the option, file or field at fault and
what was expected, so the CLI can print it as one line.
"""

from __future__ import annotations

import math
import os
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


def check_writable(option: str, path: Path) -> None:
    """Refuse an output file path that is a folder, in a missing folder, or not writable."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CTPError(f"{option}: {path} is a directory, expected a file path")
    if not parent.is_dir():
        raise CTPError(f"{option}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CTPError(f"{option}: {path} is not writable")
