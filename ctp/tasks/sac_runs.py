"""The run folder of a resumable SAC run, shared by the families that train a data-generating
policy (locomotion's behaviour policies, AntMaze's ant controller).

``config.json`` holds the run's settings (a rerun with other settings is refused), an
evaluation log holds one JSON row a line, and ``state/`` the model and replay buffer of the
last save, with ``progress.json`` written last so that a kill leaves the last whole save.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctp.utils.atomic import write_json
from ctp.utils.errors import CTPError

RESUMABLE_FIELDS = ("progress", "max_steps")  # a resumed run may show no bar, get a longer budget


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON rows of a log file, one a line (none when the file does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class SACRunFolder:
    """A run folder: ``config.json`` (the settings of ``cfg``, a dataclass with ``run_dir``),
    ``evals.jsonl`` and ``state/``. Families subclass it with their evaluation and stop rule."""

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.dir = Path(cfg.run_dir)
        self.state = self.dir / "state"

    def check_config(self) -> None:
        """Write config.json (but ``RESUMABLE_FIELDS``), or refuse to resume a run made with
        other settings."""
        path = self.dir / "config.json"
        config = {k: v for k, v in dataclasses.asdict(self.cfg).items()
                  if k not in RESUMABLE_FIELDS}
        if not path.exists():
            write_json(path, config)
            return
        try:
            theirs = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CTPError(f"{path}: unreadable run config ({exc})") from None
        for key, value in config.items():
            if theirs.get(key) != value:
                raise CTPError(f"{path}: this run was made with {key}={theirs.get(key)!r}, not "
                               f"{value!r}; pass another --run-dir or the same settings")

    def evals(self) -> list[dict[str, Any]]:
        """The evaluation rows so far."""
        return read_rows(self.dir / "evals.jsonl")

    def save_state(self, model: Any, seconds: float) -> None:
        """Model, then replay buffer, then ``progress.json`` (step, wall seconds) into
        ``state/``."""
        state = self.state
        state.mkdir(parents=True, exist_ok=True)
        (state / "progress.json").unlink(missing_ok=True)
        model.save(state / "model.tmp.zip")
        model.save_replay_buffer(state / "replay.tmp.pkl")
        (state / "model.tmp.zip").replace(state / "model.zip")
        (state / "replay.tmp.pkl").replace(state / "replay.pkl")
        write_json(state / "progress.json", {"step": model.num_timesteps, "seconds": seconds})


def learn_with_evaluations(model: Any, max_steps: int, every: int,
                           on_eval: Callable[[Any], bool], bar: Any,
                           postfix: Callable[[], dict[str, str]]) -> None:
    """``model.learn`` up to ``max_steps`` env steps: ``bar`` (tqdm) ticks every step;
    ``on_eval(model)`` runs every ``every`` steps and True from it stops the run; the bar then
    shows ``postfix()``. SAC stores a step's transition after ``_on_step``; rollout end comes
    after the store, so a state saved in ``on_eval`` has as many transitions as steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Evaluate(BaseCallback):
        stop = False

        def _on_step(self) -> bool:
            bar.update(1)
            return not self.stop

        def _on_rollout_end(self) -> None:
            if self.num_timesteps % every or self.stop:
                return
            self.stop = on_eval(self.model)
            bar.set_postfix(**postfix())

    try:
        if model.num_timesteps < max_steps:
            model.learn(max_steps - model.num_timesteps, reset_num_timesteps=False,
                        callback=Evaluate())
    finally:
        bar.close()
