"""Summary statistics every report uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def mean_se(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Mean and standard error (sample std / sqrt(n); 0 for one value) of ``values [n]``."""
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "se": se}


def normalized(ret: float, ref_min: float, ref_max: float) -> float:
    """The normalised score ``100 * (ret - ref_min) / (ref_max - ref_min)`` of one return."""
    return 100.0 * (ret - ref_min) / (ref_max - ref_min)


def goal_distance(episodes: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """How near the goal episodes came: the median over per-episode rows of their
    ``final_distance`` (at the end, or the arrival) and their ``closest_distance``."""
    return {f"{key}_median": float(np.median([e[f"{key}_distance"] for e in episodes]))
            for key in ("final", "closest")}
