"""Running a recipe: its stages in order into the run folder, skipping finished ones and
resuming an interrupted one within its budget (``ctp.recipe`` describes the folder)."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Mapping
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
from ctp.utils.atomic import WriteFailed, write_json
from ctp.utils.checkpoint import load_checkpoint
from ctp.utils.errors import CTPError, Stopped
from ctp.utils.validation import check_output

# What each stage writes into the run folder (the data stage writes the dataset elsewhere).
OUTPUTS = {"data": (), "teacher": ("teacher",), "pairs": ("pairs.pt",), "student": ("student",),
           "critic": ("critic",), "value": ("value",), "invdyn": ("invdyn",),
           "distance": ("distance",), "select": ("select",), "bundle": ("planner.pt",),
           "evaluate": ("eval.json",)}


class _Run:
    """The run folder: recipe record, finished stages, budgets."""

    def __init__(self, recipe: Recipe, out: Path):
        self.recipe, self.out = recipe, out
        self.stages_path = out / "stages.json"

    def check_recipe(self) -> None:
        """Record the recipe, or refuse to continue a run whose outputs were made with other
        settings: a stage that made outputs (``started``) binds its table and those of the
        stages before it; a table no made output depends on may change."""
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
        started = self.started()
        for table in sorted(mine.keys() | theirs.keys()):
            a, b = _without_budget(theirs.get(table)), _without_budget(mine.get(table))
            if a == b or not _bound(table, started):
                continue
            keys = sorted((a or {}).keys() | (b or {}).keys()) if isinstance(a or b, dict) else []
            key = next((k for k in keys if (a or {}).get(k) != (b or {}).get(k)), None)
            what = f"[{table}] {key}" if key else table
            old = (a or {}).get(key) if key else a
            new = (b or {}).get(key) if key else b
            raise CTPError(f"{path}: this run was made with {what} = {old!r}, the recipe now "
                           f"says {new!r}; pass another --out for a new run")
        write_json(path, mine)  # the same recipe for what was made, with this run's budgets

    def started(self) -> list[str]:
        """The stages that made outputs in the run folder: finished, or interrupted after
        writing (a training run's folder, the pairs, the select folder, ...)."""
        done = self.finished()
        return [stage for stage in STAGES
                if stage in done or any((self.out / name).exists() for name in OUTPUTS[stage])]

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


def _bound(table: str, started: list[str]) -> bool:
    """Whether the outputs made so far depend on ``table``: a stage's table binds once it
    or a later stage made outputs (a later stage is built on it); ``name`` once any did."""
    if table not in STAGES:
        return bool(started)
    return any(STAGES.index(stage) >= STAGES.index(table) for stage in started)


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
        raise Stopped(result.stopped_by, f"{result.latest} (step {result.step}) is saved")
    return {"step": result.step, "checkpoint": str(result.latest)}


def _import_teacher(planner: str, out: Path) -> dict[str, Any]:
    """The teacher stage of ``[teacher] from_planner``: the planner file's teacher as the
    run's teacher checkpoint (no training)."""
    from ctp.planning.bundle import unbundle_planner

    path = unbundle_planner(planner, out, kinds=("teacher",))["teacher"]
    payload = load_checkpoint(path)
    print(f"[teacher] the teacher of {planner} (step {payload['step']}, hindsight_goals "
          f"{payload['config']['hindsight_goals']:g}, which its students inherit); the other "
          "[teacher] options are not used")
    return {"step": payload["step"], "checkpoint": str(path), FROM_PLANNER: planner}


def _saved_step(out: Path) -> int:
    return int(load_checkpoint(out / "latest.pt")["step"])


def run_recipe(recipe: Recipe, out: str | Path | None = None, until: str | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Run ``recipe``'s stages in order into ``out`` (default: the recipe's), skipping the
    finished ones and resuming an interrupted one; stops after ``until`` when given. With
    ``progress``, a line on stderr says what each stage does before it starts. A stop
    (Ctrl-C, SIGTERM) or a failed write (a full disk) says what is kept and how to go on.
    Returns ``stages.json``'s content."""
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
        if progress:
            print(f"recipe {recipe.name}: [{stage}] {_doing(recipe, stage, cfg, out)}",
                  file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            info = _run_stage(recipe, stage, cfg, out, done, progress)
            done = run.mark(done, stage, time.perf_counter() - start, **info)
        except KeyboardInterrupt as exc:
            stop = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
            raise stop.keeping(_kept(out, done, stage, stop.kept, "")) from None
        except WriteFailed as exc:
            raise exc.keeping(_kept(out, done, stage, exc.kept, "free some space, then ")
                              ) from None
        if stage == until:
            break
    return done


def _run_stage(recipe: Recipe, stage: str, cfg: Any, out: Path, done: Mapping[str, Any],
               progress: bool) -> dict[str, Any]:
    """Run one stage; returns what ``stages.json`` records of it."""
    from ctp.evaluation.evaluate import format_table
    from ctp.training.teacher_pairs import make_pairs

    if stage == "data":
        return _data_stage(cfg, progress)
    if stage == "teacher" and FROM_PLANNER in recipe.teacher:
        return _import_teacher(recipe.teacher[FROM_PLANNER], out)
    if stage in TRAINING:
        return _train_stage(cfg, progress)
    if stage == "pairs":
        cfg.progress = progress
        return {"count": cfg.count, "path": str(make_pairs(cfg))}
    if stage == "select":
        return _select_stage(recipe, out, cfg, progress)
    if stage == "bundle":
        path = _bundle(recipe, out, _student(out, done), out / "planner.pt")
        return {"path": str(path), "mb": round(path.stat().st_size / 2**20, 2)}
    # evaluate: the table is printed before eval.json is written, so a full disk loses nothing
    result = _evaluate(out / "planner.pt", cfg, 0, out / "eval.json", progress,
                       show=lambda result: print(format_table(result), flush=True))
    return {"env": result["env"], "d4rl_normalized": result["d4rl_normalized"],
            "path": str(out / "eval.json")}


def _doing(recipe: Recipe, stage: str, cfg: Any, out: Path) -> str:
    """What ``stage`` is about to do, for the line printed before it starts."""
    from ctp.data.minari_io import dataset_dir

    if stage == "data":
        dataset_id = cfg["dataset_id"]
        if dataset_dir(dataset_id).exists():
            return f"checking {dataset_id}"
        return (f"generating {dataset_id} (ctp data generate {cfg.get('generate')}; "
                "minutes: rollouts, reference scores, then the write)")
    if stage == "teacher" and FROM_PLANNER in recipe.teacher:
        return f"taking the teacher of {recipe.teacher[FROM_PLANNER]}"
    if stage in TRAINING:
        how = "resuming" if (Path(cfg.out_dir) / "latest.pt").exists() else "training"
        return (f"{how} the {cfg.kind} network to step {cfg.steps} in {cfg.out_dir} (first "
                f"loading {recipe.data['dataset_id']} and cutting its windows)")
    if stage == "pairs":
        return f"{cfg.count} teacher ODE pairs ({cfg.heun_steps} Heun levels) -> {cfg.out}"
    if stage == "select":
        seeds = _seeds(cfg, SELECT_SEED)
        return (f"evaluating every kept student checkpoint on validation seeds "
                f"{seeds.start}..{seeds.stop - 1}")
    if stage == "bundle":
        return f"bundling the planner file {out / 'planner.pt'}"
    seeds = _seeds(cfg, 0)
    return f"evaluating {out / 'planner.pt'} on seeds {seeds.start}..{seeds.stop - 1}"


def _kept(out: Path, done: Mapping[str, Any], stage: str, first: str, hint: str) -> str:
    """What a stopped or failed recipe keeps: ``first`` (the stage's own note), the finished
    stages, and how to go on (``hint`` before 'rerun')."""
    finished = ", ".join(done) or "none"
    note = f"{first}; " if first else ""
    return (f"{note}the finished stages ({finished}) are kept in {out}; {hint}rerun the same "
            f"command to resume at [{stage}]")


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
               else None for stage in ("critic", "value", "invdyn", "distance")}
    return export_planner(ExportConfig(
        str(student), str(path), teacher=str(out / "teacher" / "latest.pt"),
        half=bool(cfg.get("half", True)),
        defaults={k: v for k, v in cfg.items() if k not in ("half", "scorers")},
        scorers=cfg.get("scorers"), **trained))


def _evaluate(planner: Path, options: Mapping[str, Any], default_seed: int, out: Path,
              progress: bool, show: Callable[[dict[str, Any]], None] | None = None
              ) -> dict[str, Any]:
    """Closed-loop evaluation of a planner file with its own defaults; JSON to ``out``
    (``show``: called with the results before it is written)."""
    from ctp.evaluation.evaluate import EvalConfig, evaluate
    from ctp.planning.bundle import load_planner_file
    from ctp.planning.config import defaults_of

    payload = load_planner_file(planner)
    seeds = _seeds(options, default_seed)
    return evaluate(EvalConfig(
        env=_planner_env(payload), checkpoint=str(planner), episodes=len(seeds),
        seed=seeds.start, num_envs=options.get("num_envs", 1),
        replan=(payload.get("defaults") or {}).get("replan"), planner=defaults_of(payload),
        out=str(out), progress=progress), show=show)


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
