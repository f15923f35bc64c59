"""Running a recipe: its stages in order into the run folder, skipping finished ones and
resuming an interrupted one within its budget (``ctp.recipe`` describes the folder)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctp.recipe.config import (
    FROM_PLANNER,
    OPTIONAL,
    SELECT_SEED,
    STAGES,
    TRAINING,
    Recipe,
    _seeds,
    _stage_config,
)
from ctp.utils.atomic import write_json
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_output


class _Run:
    """The run folder: recipe record, finished stages, budgets."""

    def __init__(self, recipe: Recipe, out: Path):
        self.recipe, self.out = recipe, out
        self.stages_path = out / "stages.json"

    def check_recipe(self) -> None:
        """Record the recipe, or refuse to continue a run made from another one."""
        path = self.out / "recipe.json"
        mine = self.recipe.to_dict()
        mine.pop("out")
        if not path.exists():
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(path, mine)
            return
        try:
            theirs = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CTPError(f"{path}: unreadable recipe record ({exc})") from None
        for table in sorted(mine.keys() | theirs.keys()):
            a, b = _without_budget(theirs.get(table)), _without_budget(mine.get(table))
            if a == b:
                continue
            keys = sorted((a or {}).keys() | (b or {}).keys()) if isinstance(a or b, dict) else []
            key = next((k for k in keys if (a or {}).get(k) != (b or {}).get(k)), None)
            what = f"[{table}] {key}" if key else table
            old = (a or {}).get(key) if key else a
            new = (b or {}).get(key) if key else b
            raise CTPError(f"{path}: this run was made with {what} = {old!r}, the recipe now "
                           f"says {new!r}; pass another --out for a new run")
        write_json(path, mine)  # the same recipe, with this run's budgets

    def finished(self) -> dict[str, Any]:
        if not self.stages_path.exists():
            return {}
        try:
            return json.loads(self.stages_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CTPError(f"{self.stages_path}: unreadable ({exc})") from None

    def mark(self, done: dict[str, Any], stage: str, seconds: float, **info: Any
             ) -> dict[str, Any]:
        """``done`` (the finished stages) with ``stage`` added, written to stages.json."""
        done = {**done, stage: {"seconds": round(seconds, 1), **info}}
        write_json(self.stages_path, done)
        return done


def _without_budget(table: Any) -> Any:
    """A recipe table without ``max_minutes``: a budget may change between attempts (the
    weights do not depend on it; ``steps`` and the schedule do)."""
    if not isinstance(table, dict):
        return table
    return {k: v for k, v in table.items() if k != "max_minutes"}


def spent_seconds(metrics: Path) -> float:
    """Wall seconds a training run has used over all its attempts, from ``metrics.jsonl``
    (each attempt logs ``elapsed_s`` from its own start)."""
    if not metrics.exists():
        return 0.0
    total, last = 0.0, 0.0
    for line in metrics.read_text().splitlines():
        try:
            elapsed = float(json.loads(line)["elapsed_s"])
        except (ValueError, KeyError, TypeError):
            continue
        if elapsed < last:  # a new attempt
            total += last
        last = elapsed
    return total + last


def _data_stage(options: Mapping[str, Any], progress: bool) -> dict[str, Any]:
    """The dataset, generated when missing; an existing one must have the recipe's size."""
    from ctp.data.minari_io import dataset_dir, open_dataset
    from ctp.tasks import generate_dataset

    dataset_id = options["dataset_id"]
    steps = options.get("steps")
    if not dataset_dir(dataset_id).exists():
        name = options.get("generate")
        if name is None:
            raise CTPError(f"[data] {dataset_id} is not in {dataset_dir(dataset_id).parent} "
                           "and the recipe names no 'generate' dataset to make")
        extra = {"steps": steps} if steps is not None else {}
        print(generate_dataset(name, seed=options.get("seed", 123), progress=progress, **extra))
    total = int(open_dataset(dataset_id).total_steps)
    if steps is not None and total != steps:
        raise CTPError(f"[data] {dataset_id} holds {total} steps, the recipe asks for {steps}; "
                       f"regenerate it (ctp data generate {options.get('generate', 'NAME')} "
                       f"--steps {steps} --force) or change the recipe")
    return {"dataset_id": dataset_id, "steps": total}


def _train_stage(cfg: Any, progress: bool) -> dict[str, Any]:
    """Train (or resume) one network within what is left of its budget."""
    from ctp.training.loop import train

    out = Path(cfg.out_dir)
    cfg.resume = (out / "latest.pt").exists()
    cfg.progress = progress
    if cfg.max_minutes is not None:
        left = cfg.max_minutes - spent_seconds(out / "metrics.jsonl") / 60
        if left <= 0:
            return {"step": _saved_step(out), "budget_used": True}
        cfg.max_minutes = left
    result = train(cfg)
    if result.stopped_by is not None:
        raise KeyboardInterrupt
    return {"step": result.step, "checkpoint": str(result.latest)}


def _import_teacher(planner: str, out: Path) -> dict[str, Any]:
    """The teacher stage of ``[teacher] from_planner``: the planner file's teacher as the
    run's teacher checkpoint (no training)."""
    from ctp.planning.bundle import unbundle_planner

    path = unbundle_planner(planner, out, kinds=("teacher",))["teacher"]
    step = _saved_step(path.parent)
    print(f"[teacher] the teacher of {planner} (step {step}); the other [teacher] options "
          "are not used")
    return {"step": step, "checkpoint": str(path), FROM_PLANNER: planner}


def _saved_step(out: Path) -> int:
    from ctp.utils.checkpoint import load_checkpoint

    return int(load_checkpoint(out / "latest.pt")["step"])


def run_recipe(recipe: Recipe, out: str | Path | None = None, until: str | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Run ``recipe``'s stages in order into ``out`` (default: the recipe's), skipping the
    finished ones and resuming an interrupted one; stops after ``until`` when given.
    Returns ``stages.json``'s content."""
    from ctp.evaluation.evaluate import format_table
    from ctp.training.teacher_pairs import make_pairs

    if until is not None and until not in STAGES:
        raise CTPError(f"--until: expected one of {', '.join(STAGES)}, got {until!r}")
    option = "--out" if out else f"{recipe.source}: out"
    out = check_output(option, out or recipe.out, folder=True)
    run = _Run(recipe, out)
    run.check_recipe()
    done = run.finished()
    for stage in STAGES:
        cfg = _stage_config(recipe, stage, out)
        if stage in done or (stage in OPTIONAL and cfg is None):
            if stage == until:
                break
            continue
        start = time.perf_counter()
        if stage == "data":
            info = _data_stage(cfg, progress)
        elif stage == "teacher" and FROM_PLANNER in recipe.teacher:
            info = _import_teacher(recipe.teacher[FROM_PLANNER], out)
        elif stage in TRAINING:
            info = _train_stage(cfg, progress)
        elif stage == "pairs":
            cfg.progress = progress
            info = {"count": cfg.count, "path": str(make_pairs(cfg))}
        elif stage == "select":
            info = _select_stage(recipe, out, cfg, progress)
        elif stage == "bundle":
            path = _bundle(recipe, out, _student(out, done), out / "planner.pt")
            info = {"path": str(path), "mb": round(path.stat().st_size / 2**20, 2)}
        else:
            result = _evaluate(out / "planner.pt", cfg, 0, out / "eval.json", progress)
            print(format_table(result))
            info = {"env": result["env"], "d4rl_normalized": result["d4rl_normalized"],
                    "path": str(out / "eval.json")}
        done = run.mark(done, stage, time.perf_counter() - start, **info)
        if stage == until:
            break
    return done


def _student(out: Path, finished: Mapping[str, Any]) -> Path:
    """The student checkpoint the planner is made from: [select]'s choice, else the last."""
    chosen = finished.get("select", {}).get("chosen")
    return Path(chosen) if chosen else out / "student" / "latest.pt"


def _bundle(recipe: Recipe, out: Path, student: Path, path: Path) -> Path:
    """A planner file at ``path`` from ``student``, the teacher and the recipe's other
    trained networks, with ``[bundle]``'s defaults and scorers."""
    from ctp.planning.bundle import ExportConfig, export_planner

    cfg = recipe.bundle
    trained = {stage: str(out / stage / "latest.pt") if getattr(recipe, stage) is not None
               else None for stage in ("critic", "value", "invdyn")}
    return export_planner(ExportConfig(
        str(student), str(path), teacher=str(out / "teacher" / "latest.pt"),
        half=bool(cfg.get("half", True)),
        defaults={k: v for k, v in cfg.items() if k not in ("half", "scorers")},
        scorers=cfg.get("scorers"), **trained))


def _evaluate(planner: Path, options: Mapping[str, Any], default_seed: int, out: Path,
              progress: bool) -> dict[str, Any]:
    """Closed-loop evaluation of a planner file with its own defaults; JSON to ``out``."""
    from ctp.evaluation.evaluate import EvalConfig, evaluate
    from ctp.planning.bundle import load_planner_file
    from ctp.planning.config import defaults_of

    payload = load_planner_file(planner)
    seeds = _seeds(options, default_seed)
    return evaluate(EvalConfig(
        env=_planner_env(payload), checkpoint=str(planner), episodes=len(seeds),
        seed=seeds.start, num_envs=options.get("num_envs", 1),
        replan=(payload.get("defaults") or {}).get("replan"), planner=defaults_of(payload),
        out=str(out), progress=progress))


def _select_stage(recipe: Recipe, out: Path, options: Mapping[str, Any], progress: bool
                  ) -> dict[str, Any]:
    """Evaluate every kept student checkpoint (``latest.pt`` and the ``keep_best``
    lowest-loss ones) on the validation seeds; the best mean score is chosen."""
    folder = out / "select"
    folder.mkdir(parents=True, exist_ok=True)
    scores: dict[str, float] = {}
    for student in sorted((out / "student").glob("step-*.pt")) + [out / "student" / "latest.pt"]:
        planner = _bundle(recipe, out, student, folder / f"{student.stem}.planner.pt")
        result = _evaluate(planner, options, SELECT_SEED, folder / f"{student.stem}.json",
                           progress)
        scores[str(student)] = result["d4rl_normalized"]["mean"]
        planner.unlink()  # a few MB each; the JSON stays
    chosen = max(scores, key=lambda path: scores[path])
    return {"chosen": chosen, "validation": scores}


def _planner_env(payload: Mapping[str, Any]) -> str:
    """The env a planner file plans for (its task's env of its dataset)."""
    from ctp.tasks import get_task, planning_task

    return planning_task(get_task(payload["task"])).env_for_dataset(payload["dataset_id"])
