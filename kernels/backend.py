"""Which implementation a kernel call runs: the Triton kernel or the PyTorch reference."""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

import torch

Backend = Literal["auto", "triton", "torch"]


def triton_available() -> bool:
    """True when the ``triton`` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def interpreter_enabled() -> bool:
    """True when Triton's CPU interpreter is switched on (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(backend: str, device: torch.device | str | None = None) -> str:
    """Resolve "auto" to "triton" (CUDA device and triton importable) or "torch".

    "triton" is returned as asked only where it can run: on CUDA, or on the CPU with the
    interpreter enabled; otherwise a ValueError says what is missing.
    """
    if backend not in ("auto", "triton", "torch"):
        raise ValueError(f"backend: expected 'auto', 'triton' or 'torch', got {backend!r}")
    dev = torch.device(device) if device is not None else None
    on_cuda = dev is not None and dev.type == "cuda"
    if backend == "torch":
        return "torch"
    if backend == "auto":
        return "triton" if on_cuda and triton_available() else "torch"
    if not triton_available():
        raise ValueError("backend='triton': the triton package is not installed")
    if not on_cuda and not interpreter_enabled():
        raise ValueError("backend='triton' on a CPU tensor needs TRITON_INTERPRET=1")
    return "triton"


def active_backend() -> str:
    """The backend "auto" picks on this machine's default device (for ``ctp info``)."""
    return resolve_backend("auto", "cuda" if torch.cuda.is_available() else "cpu")
