"""Checkpoints: atomic writes, a schema version, and loading that can never run code.

A checkpoint is one ``torch.save`` dict of tensors and plain Python values (loadable with
``torch.load(weights_only=True)``): schema_version, kind ("teacher" | "ctm" | "critic"),
the full training config, the network configs, model / EMA / optimizer state, the normaliser,
dataset id, horizon, stride, step and the last loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ctp.atomic import atomic_write
from ctp.errors import CTPError

SCHEMA_VERSION = 1
KINDS = ("teacher", "ctm", "critic")
# Not a planner network: the SAC actor that generated a locomotion dataset.
BEHAVIOUR_KIND = "behaviour"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder + rename)."""
    payload = {"schema_version": SCHEMA_VERSION, **payload}
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: str | Path, kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read a checkpoint, checking its schema and (when given) its kind."""
    path = Path(path)
    if not path.is_file():
        raise CTPError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable, truncated or foreign pickles
        raise CTPError(f"{path}: not a readable ctp checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "schema_version" not in payload:
        raise CTPError(f"{path}: not a ctp checkpoint (no schema_version)")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise CTPError(
            f"{path}: schema_version {payload['schema_version']}, expected {SCHEMA_VERSION}"
        )
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and payload.get("kind") not in wanted:
        raise CTPError(
            f"{path}: kind {payload.get('kind')!r}, expected {' or '.join(map(repr, wanted))}"
        )
    return payload


def prune_checkpoints(folder: Path, keep_best: int) -> None:
    """Keep ``latest.pt`` and the ``keep_best`` lowest-loss ``step-*.pt`` files."""
    scored = []
    for file in folder.glob("step-*.pt"):
        try:
            loss = float(file.stem.split("-loss-")[1])
        except (IndexError, ValueError):
            continue
        scored.append((loss, file))
    for _, file in sorted(scored)[keep_best:]:
        file.unlink(missing_ok=True)
