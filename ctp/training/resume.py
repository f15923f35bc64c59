"""A run folder across attempts: what ``--resume`` continues, the settings a resumed run must
keep, and the folder made ready (stale temp files, metrics rows past the saved step)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ctp.training.config import TrainConfig
from ctp.utils.atomic import atomic_write
from ctp.utils.checkpoint import load_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_no_run, check_output, same_file

# Config fields a run's weights depend on, per kind: a resumed run must ask for the same.
# (A ctm student's width is checked against its checkpoint's network; dim is the teacher's.)
RESUME_FIELDS = {
    "teacher": ("dataset_id", "horizon", "stride", "dim", "dim_mults", "plan_dims",
                "hindsight_goals"),
    "ctm": ("dataset_id", "horizon", "stride", "dim_mults", "teacher"),
    "critic": ("dataset_id", "horizon", "stride", "dim", "dim_mults", "student"),
    "value": ("dataset_id", "horizon", "stride", "dim", "dim_mults", "gamma", "plan_dims"),
    "invdyn": ("dataset_id", "stride", "hidden", "target_dims"),
    "distance": ("dataset_id", "hidden", "expectile", "waypoints", "random_goals"),
}


def _resume_payload(cfg: TrainConfig, out: Path) -> dict[str, Any] | None:
    """The checkpoint ``--resume`` continues (None without --resume); a missing one is an
    error, not a silent fresh start, and a fresh start never replaces one."""
    latest = out / "latest.pt"
    check_output("--out", out, folder=True)
    if not cfg.resume:
        check_no_run("--out", out, "pass --resume to continue it or choose another")
        return None
    if not latest.exists():
        raise CTPError(f"--resume: {latest} not found (nothing to resume; check --out, or "
                       "drop --resume to start a new run)")
    return load_checkpoint(latest, cfg.kind)


def check_resume_config(saved: dict[str, Any], cfg: TrainConfig, latest: Path) -> None:
    """Refuse a resume whose settings differ from the saved run's in a field the weights
    depend on (``RESUME_FIELDS``), naming the field; input files are compared as files."""
    wanted = cfg.to_dict()
    for name in RESUME_FIELDS[cfg.kind]:
        old, new = saved.get(name), wanted[name]
        if old is None or new is None:  # e.g. an unbundled checkpoint records no teacher
            continue
        same = same_file(old, new) if name in ("teacher", "student") else old == new
        if not same:
            raise CTPError(f"--resume: {latest} was trained with {name} {old!r}, this run asks "
                           f"for {new!r}; its weights depend on {name} (use another --out for "
                           "a new run)")


def _logged_step(line: str) -> int | None:
    """The step of one metrics.jsonl row; None for a torn or foreign line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row.get("step") if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def prepare_out_dir(out: Path, step: int) -> None:
    """Create the run folder, delete temp files of killed saves, and drop metrics rows past
    ``step`` (logged after the checkpoint a resume starts from), so no step is logged twice."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CTPError(f"--out: cannot create folder {out} ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise CTPError(f"--out: folder {out} is not writable")
    for stale in out.glob(".*.tmp"):  # atomic_write's temp files of a killed run
        stale.unlink(missing_ok=True)
    metrics = out / "metrics.jsonl"
    if metrics.exists():
        kept = [line for line in metrics.read_text().splitlines()
                if (logged := _logged_step(line)) is not None and logged <= step]
        atomic_write(metrics, lambda fh: fh.write("".join(f"{line}\n" for line in kept)
                                                  .encode()))
