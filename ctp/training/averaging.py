"""Weight averaging: one checkpoint whose weights are the mean of several of one run's.

Late checkpoints of a CTM run differ in planning score by more than their losses suggest
(docs/results.md section 11, "Averaged weights and replanning every 50 steps"); the uniform
average of a few of them (a "model soup" or stochastic weight average) lies between them in
weight space and plans more steadily.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ctp.utils.checkpoint import KINDS, load_checkpoint, save_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_finite_state, check_output

# Fields that must agree for weights to be averaged meaningfully.
_SAME = ("kind", "unet", "dataset_id", "horizon", "stride", "normalizer")


def _mean_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors (accumulated in float64); other tensors from
    the first state."""
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = torch.stack([s[key].double() for s in states]).mean(0)
            out[key] = total.to(first.dtype)
        else:
            out[key] = first
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def average_checkpoints(paths: list[str | Path]) -> dict[str, Any]:
    """The payload of the latest-step checkpoint in ``paths`` with ``model`` and ``ema``
    replaced by their means over all of them; ``averaged_from`` lists ``{path, step}``.

    The checkpoints must share kind, network config, dataset, horizon, stride and
    normaliser, and hold finite tensors of the same names and shapes (else a one-line
    CTPError).
    The optimizer state and step are the latest checkpoint's, so ``--resume`` can go on
    from it; ``loss`` is NaN.
    """
    if len(paths) < 2:
        raise CTPError(f"average: expected at least 2 checkpoints, got {len(paths)}")
    payloads = [load_checkpoint(p, KINDS) for p in paths]
    for path, payload in zip(paths, payloads, strict=True):
        for part in ("model", "ema"):
            check_finite_state(payload[part], f"{path}: {part}")
    first = payloads[0]
    shapes = {part: {k: v.shape for k, v in first[part].items()} for part in ("model", "ema")}
    for path, other in zip(paths[1:], payloads[1:], strict=True):
        for field in _SAME:
            if not _equal(other[field], first[field]):
                raise CTPError(f"{path}: {field} differs from {paths[0]}'s")
        for part, wanted in shapes.items():
            if {k: v.shape for k, v in other[part].items()} != wanted:
                raise CTPError(f"{path}: {part} tensors differ in names or shapes "
                               f"from {paths[0]}'s")
    latest = max(payloads, key=lambda p: p["step"])
    averaged = {k: v for k, v in latest.items() if k != "schema_version"}
    for part in ("model", "ema"):
        averaged[part] = _mean_state([p[part] for p in payloads])
    averaged["loss"] = math.nan  # no training loss was measured on the averaged weights
    averaged["averaged_from"] = [{"path": str(p), "step": int(q["step"])}
                                 for p, q in zip(paths, payloads, strict=True)]
    return averaged


def write_average(paths: list[str | Path], out: str | Path) -> Path:
    """Average ``paths`` (see ``average_checkpoints``) and save the result atomically."""
    check_output("--out", out, {f"CKPT {path}": path for path in paths})
    return save_checkpoint(out, average_checkpoints(paths))
