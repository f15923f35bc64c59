"""Recipes: one TOML file per planner, run end to end by ``ctp recipe FILE``.

A recipe names a dataset and the settings of every stage that turns it into a planner::

    data -> teacher -> pairs -> student -> critic -> value -> invdyn -> select -> bundle
         -> evaluate

Each table of the file holds the stage's options with the names of the library's configs
(``[teacher]``/``[student]``/``[critic]``/``[value]``/``[invdyn]``:
``ctp.training.loop.TrainConfig`` fields; ``[pairs]``:
``ctp.training.teacher_pairs.PairsConfig``'s; ``[bundle]``: planner defaults and
``scorers``, a table of scorer weights; ``[select]`` and ``[evaluate]``: episodes, seed,
vector envs). ``[pairs]``, ``[critic]``, ``[value]``, ``[invdyn]`` and ``[select]`` are
optional. ``[teacher] from_planner = "PLANNER.pt"`` takes that planner file's teacher
instead of training one (its dataset must be ``[data]``'s; the other ``[teacher]`` options
are then unused), to distil a new student from a teacher that already ships. The value
network and the inverse dynamics take the dataset, horizon and stride of the teacher
(invdyn's k, its ``stride``, may be a multiple of the plans' stride); the bundle holds every
network the recipe trains. ``[select]`` evaluates every kept student checkpoint
on validation seeds (1000.. by default, refused if they overlap the test seeds) and bundles
the best; without it the bundle takes the student's last checkpoint.

The run folder (``out``) holds ``recipe.json`` (the recipe as run; a rerun with another
recipe is refused, naming the first differing entry, except for budgets: ``max_minutes`` may
change), one folder per training stage, ``pairs.pt``, ``select/`` (one JSON per candidate),
``planner.pt``, ``eval.json`` and ``stages.json`` (per finished stage: wall seconds and what
it made). Rerunning the command skips finished stages and resumes the interrupted one; a
training stage's ``max_minutes`` is its budget over all attempts.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctp.utils.atomic import write_json
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STAGES = ("data", "teacher", "pairs", "student", "critic", "value", "invdyn", "select",
          "bundle", "evaluate")
TRAINING = {"teacher": "teacher", "student": "ctm", "critic": "critic", "value": "value",
            "invdyn": "invdyn"}  # stage -> kind
OPTIONAL = ("pairs", "critic", "value", "invdyn", "select")
BUNDLE_KEYS = ("half", "candidates", "replan", "dyn_weight", "critic_weight", "scorers",
               "velocities")
EVALUATE_KEYS = ("episodes", "seed", "num_envs")  # also [select]'s
DATA_KEYS = ("dataset_id", "generate", "steps", "seed")
FROM_PLANNER = "from_planner"  # [teacher]: take the teacher of this planner file, untrained
EVAL_EPISODES = 100  # [evaluate] / [select] episodes when not given
SELECT_SEED = 1000  # [select]'s first validation seed when not given


@dataclass
class Recipe:
    """A parsed recipe: the dataset and each stage's options (see the module doc)."""

    name: str
    out: str
    data: dict[str, Any]
    teacher: dict[str, Any]
    student: dict[str, Any]
    bundle: dict[str, Any]
    evaluate: dict[str, Any] = field(default_factory=dict)
    pairs: dict[str, Any] | None = None
    critic: dict[str, Any] | None = None
    value: dict[str, Any] | None = None
    invdyn: dict[str, Any] | None = None
    select: dict[str, Any] | None = None
    source: str = ""  # the file it was read from (not part of the recipe)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as recorded in the run folder (without ``source``)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        return d


def _table(raw: Mapping[str, Any], key: str, source: str, required: bool) -> dict | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise CTPError(f"{source}: [{key}]: expected a table of options")
    return dict(value)


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise CTPError(f"{where}: unknown option {key!r}; expected one of "
                           f"{', '.join(allowed)}")


def parse_recipe(text: str, source: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """A checked :class:`Recipe` from TOML ``text``; ``overrides`` maps ``"table.key"`` to a
    value that replaces the file's (``ctp recipe --set``). Errors name ``source`` and the
    table and option at fault; every stage's config is built (and range-checked) here, so a
    bad option fails before any stage runs."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CTPError(f"{source}: not valid TOML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        table, _, key = dotted.partition(".")
        if not key or table not in STAGES:
            raise CTPError(f"--set {dotted}: expected TABLE.KEY with TABLE one of "
                           f"{', '.join(STAGES)}")
        raw.setdefault(table, {})[key] = value
    _check_keys(raw, ("name", "out", *STAGES), source)
    for key in ("name", "out"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise CTPError(f"{source}: {key}: expected a non-empty string")
    recipe = Recipe(
        name=raw["name"], out=raw["out"],
        data=_table(raw, "data", source, True),
        teacher=_table(raw, "teacher", source, True),
        student=_table(raw, "student", source, True),
        bundle=_table(raw, "bundle", source, True),
        evaluate=_table(raw, "evaluate", source, False) or {},
        pairs=_table(raw, "pairs", source, False),
        critic=_table(raw, "critic", source, False),
        value=_table(raw, "value", source, False),
        invdyn=_table(raw, "invdyn", source, False),
        select=_table(raw, "select", source, False),
        source=source,
    )
    _check_keys(recipe.data, DATA_KEYS, f"{source}: [data]")
    if not isinstance(recipe.data.get("dataset_id"), str):
        raise CTPError(f"{source}: [data] dataset_id: expected a Minari dataset id string")
    _check_keys(recipe.bundle, BUNDLE_KEYS, f"{source}: [bundle]")
    _check_keys(recipe.evaluate, EVALUATE_KEYS, f"{source}: [evaluate]")
    if recipe.select is not None:
        _check_keys(recipe.select, EVALUATE_KEYS, f"{source}: [select]")
    for stage in STAGES:  # build every config once: types and ranges checked up front
        _stage_config(recipe, stage, Path(recipe.out))
    return recipe


def load_recipe(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """:func:`parse_recipe` of the file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CTPError(f"{path}: cannot read the recipe ({exc.strerror})") from None
    return parse_recipe(text, str(path), overrides)


def _build(where: str, make: Callable[[], Any]) -> Any:
    """``make()``, with a wrong option name, type or range reported as one line at ``where``."""
    try:
        return make()
    except CTPError as exc:
        raise CTPError(f"{where}: {exc}") from None
    except TypeError as exc:  # an unknown keyword of a config dataclass
        raise CTPError(f"{where}: {exc}".replace("__init__() ", "")) from None


def _stage_config(recipe: Recipe, stage: str, out: Path) -> Any:
    """The library config of ``stage`` (None for an absent optional stage), checked."""
    from ctp.training.loop import TrainConfig, validate
    from ctp.training.teacher_pairs import PairsConfig

    where = f"{recipe.source}: [{stage}]"
    if stage == "teacher" and FROM_PLANNER in recipe.teacher:
        return _imported_teacher(recipe.teacher[FROM_PLANNER], recipe.data["dataset_id"],
                                 out, where)
    if stage in TRAINING:
        options = getattr(recipe, stage)
        if options is None:
            return None
        reserved = {"kind", "out_dir", "resume", "teacher", "student", "pairs", "dataset_id"}
        if stage == "value":
            reserved |= {"horizon", "stride"}  # the plans': the teacher's
        if stage == "invdyn":
            reserved |= {"horizon"}  # its stride is k, by default the plans' stride
        if bad := reserved & options.keys():
            raise CTPError(f"{where}: {sorted(bad)[0]!r} is set by the recipe runner")
        plans = (_stage_config(recipe, "teacher", out) if stage in ("value", "invdyn")
                 else None)
        links = {
            "teacher": {"dataset_id": recipe.data["dataset_id"]},
            "student": {"teacher": str(out / "teacher" / "latest.pt"),
                        "pairs": str(out / "pairs.pt") if recipe.pairs is not None else None},
            "critic": {"student": str(out / "student" / "latest.pt")},
            "value": plans and {"dataset_id": plans.dataset_id, "horizon": plans.horizon,
                                "stride": plans.stride},
            "invdyn": plans and {"dataset_id": plans.dataset_id,
                                 "stride": options.get("stride", plans.stride)},
        }[stage]
        if stage == "invdyn":
            options = {k: v for k, v in options.items() if k != "stride"}
            from ctp.models.inverse_dynamics import check_reach

            _build(where, lambda: check_reach(links["stride"], plans.stride, plans.horizon))
        cfg = _build(where, lambda: TrainConfig(kind=TRAINING[stage], out_dir=str(out / stage),
                                                **links, **options))
        _build(where, lambda: validate(cfg))
        return cfg
    if stage == "pairs":
        if recipe.pairs is None:
            return None
        cfg = _build(where, lambda: PairsConfig(teacher=str(out / "teacher" / "latest.pt"),
                                                out=str(out / "pairs.pt"), **recipe.pairs))
        _build(where, cfg.validate)
        return cfg
    if stage == "bundle":
        _build(where, lambda: _check_bundle(recipe.bundle, recipe.data["dataset_id"]))
    if stage in ("select", "evaluate"):
        options = getattr(recipe, stage)
        if options is None:
            return None
        _build(where, lambda: check_options([
            (isinstance(options.get(key, 1), int) and options.get(key, 1) >= low,
             key, f"an integer >= {low}", options.get(key))
            for key, low in (("episodes", 1), ("seed", 0), ("num_envs", 1))]))
        if stage == "select":
            _build(where, lambda: _check_apart(options, recipe.evaluate))
    return {"data": recipe.data, "bundle": recipe.bundle, "select": recipe.select,
            "evaluate": recipe.evaluate}[stage]


def _imported_teacher(planner: Any, dataset_id: str, out: Path, where: str) -> Any:
    """The config of a teacher taken from a planner file instead of trained (``[teacher]
    from_planner``): its dataset must be the recipe's."""
    from ctp.planning.bundle import load_planner_file
    from ctp.training.loop import TrainConfig

    if not isinstance(planner, str) or not planner:
        raise CTPError(f"{where} {FROM_PLANNER}: expected a planner file path, got {planner!r}")
    payload = _build(f"{where} {FROM_PLANNER}", lambda: load_planner_file(planner))
    if payload.get("teacher") is None:
        raise CTPError(f"{where} {FROM_PLANNER}: {planner} holds no teacher")
    if payload["dataset_id"] != dataset_id:
        raise CTPError(f"{where} {FROM_PLANNER}: {planner}'s teacher was trained on "
                       f"{payload['dataset_id']}, [data] names {dataset_id}")
    unet = payload["teacher"]["unet"]
    return TrainConfig(kind="teacher", out_dir=str(out / "teacher"), dataset_id=dataset_id,
                       horizon=payload["horizon"], stride=payload["stride"], dim=unet["dim"],
                       dim_mults=tuple(unet["dim_mults"]))


def _seeds(options: Mapping[str, Any], default_seed: int) -> range:
    """The episode seeds an ``[evaluate]``/``[select]`` table asks for."""
    start = options.get("seed", default_seed)
    return range(start, start + options.get("episodes", EVAL_EPISODES))


def _check_apart(select: Mapping[str, Any], evaluate: Mapping[str, Any]) -> None:
    """Validation seeds (checkpoint choice) must not overlap the test seeds."""
    val, test = _seeds(select, SELECT_SEED), _seeds(evaluate, 0)
    if val.start < test.stop and test.start < val.stop:
        raise CTPError(f"seeds {val.start}..{val.stop - 1} overlap the test seeds "
                       f"{test.start}..{test.stop - 1} of [evaluate]; choose checkpoints on "
                       "other seeds (default 1000..)")


def _check_bundle(options: Mapping[str, Any], dataset_id: str) -> None:
    """The planner defaults a bundle stage writes, range-checked as ``ctp bundle`` does; the
    scorer weights and the velocity source checked against the dataset's task."""
    from ctp.planning.planner import PlannerConfig
    from ctp.planning.scorers import check_weights
    from ctp.tasks import planning_task, task_for_dataset

    replan = options.get("replan")
    check_options([(replan is None or (isinstance(replan, int) and replan >= 1), "replan",
                    "an integer >= 1 env steps", replan)])
    task = planning_task(task_for_dataset(dataset_id))
    if "scorers" in options:
        check_weights(options["scorers"], task, "scorers")
    PlannerConfig(**{k: v for k, v in options.items()
                     if k not in ("half", "replan", "scorers")}).validate()
    velocities = options.get("velocities", "plan")
    if velocities not in task.velocity_sources:
        raise CTPError(f"velocities {velocities!r}: the {task.name} controller follows "
                       f"{', '.join(task.velocity_sources)} only")


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
    out = Path(out or recipe.out)
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
    from ctp.planning.planner import defaults_of

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


def parse_override(text: str) -> tuple[str, Any]:
    """``TABLE.KEY=VALUE`` (VALUE in TOML syntax; a bare word is a string) -> (key, value)."""
    dotted, sep, value = text.partition("=")
    if not sep or not dotted:
        raise CTPError(f"--set {text!r}: expected TABLE.KEY=VALUE, e.g. teacher.steps=2000")
    try:
        return dotted.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return dotted.strip(), value
