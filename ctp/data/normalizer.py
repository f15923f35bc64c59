"""Per-dimension affine map of [low, high] onto [-1, 1], saved and restored exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from ctp.utils.errors import CTPError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass
class Normalizer:
    """x -> 2 (x - low) / (high - low) - 1 on the last axis; low, high: float64 ``[D]``."""

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        self.low = np.asarray(self.low, dtype=np.float64)
        self.high = np.asarray(self.high, dtype=np.float64)
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ValueError("normalizer: low and high must be 1-D arrays of one length")
        if not (np.isfinite(self.low).all() and np.isfinite(self.high).all()):
            raise ValueError("normalizer: low and high must be finite (no NaN or inf)")
        # A constant dimension maps to 0 instead of dividing by zero.
        constant = self.high <= self.low
        self.low, self.high = (np.where(constant, self.low - 1.0, self.low),
                               np.where(constant, self.low + 1.0, self.high))

    @classmethod
    def fit(cls, data: np.ndarray) -> Normalizer:
        """Fit to the min/max of ``data`` ``[N, D]``."""
        return cls(data.min(axis=0), data.max(axis=0))

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def _bounds(self, like: ArrayT) -> tuple[ArrayT, ArrayT]:
        if isinstance(like, torch.Tensor):
            low = torch.as_tensor(self.low, dtype=like.dtype, device=like.device)
            high = torch.as_tensor(self.high, dtype=like.dtype, device=like.device)
            return low, high
        return self.low.astype(like.dtype, copy=False), self.high.astype(like.dtype, copy=False)

    def normalize(self, x: ArrayT) -> ArrayT:
        """``[..., D]`` raw -> ``[..., D]`` in [-1, 1] (inside the fitted range)."""
        low, high = self._bounds(x)
        return 2.0 * (x - low) / (high - low) - 1.0

    def unnormalize(self, x: ArrayT) -> ArrayT:
        """Inverse of :meth:`normalize`."""
        low, high = self._bounds(x)
        return (x + 1.0) * 0.5 * (high - low) + low

    def state_dict(self) -> dict[str, Any]:
        """Plain lists (exact float64 values), safe for ``torch.load(weights_only=True)``."""
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], source: str = "") -> Normalizer:
        """The normaliser saved by :meth:`state_dict`; a malformed one is a CTPError naming
        ``source`` (the file it was read from)."""
        try:
            return cls(np.array(state["low"], dtype=np.float64),
                       np.array(state["high"], np.float64))
        except (KeyError, TypeError, ValueError) as exc:
            detail = str(exc) if isinstance(exc, ValueError) else "normalizer: expected low, high"
            raise CTPError(f"{source or 'checkpoint'}: {detail}") from None
