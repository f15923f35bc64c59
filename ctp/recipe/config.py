"""Reading a recipe: the TOML file, ``--set`` overrides, and every stage's library config
built and range-checked before any stage runs (``ctp.recipe`` describes the file)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctp.utils.errors import CTPError
from ctp.utils.validation import MAX_COUNT, MAX_SEED, check_options, int_option

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STAGES = ("data", "teacher", "pairs", "student", "critic", "value", "invdyn", "distance",
          "select", "bundle", "evaluate")
TRAINING = {"teacher": "teacher", "student": "ctm", "critic": "critic", "value": "value",
            "invdyn": "invdyn", "distance": "distance"}  # stage -> kind
OPTIONAL = ("pairs", "critic", "value", "invdyn", "distance", "select")
BUNDLE_KEYS = ("half", "candidates", "replan", "dyn_weight", "critic_weight", "scorers",
               "velocities", "aim", "target_radius", "back_off")
EVALUATE_KEYS = ("episodes", "seed", "num_envs")  # also [select]'s
DATA_KEYS = ("dataset_id", "generate", "steps", "seed")
FROM_PLANNER = "from_planner"  # [teacher]: take the teacher of this planner file, untrained
EVAL_EPISODES = 100  # [evaluate] / [select] episodes when not given
SELECT_SEED = 1000  # [select]'s first validation seed when not given


@dataclass
class Recipe:
    """A parsed recipe: the dataset and each stage's options (see ``ctp.recipe``)."""

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
    distance: dict[str, Any] | None = None
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
        distance=_table(raw, "distance", source, False),
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
    except UnicodeDecodeError:
        raise CTPError(f"{path}: not a text file (expected a TOML recipe)") from None
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
    from ctp.training.config import TrainConfig, validate
    from ctp.training.teacher_pairs import PairsConfig

    where = f"{recipe.source}: [{stage}]"
    if stage == "teacher" and FROM_PLANNER in recipe.teacher:
        return _imported_teacher(recipe.teacher, recipe.data["dataset_id"], out, where)
    if stage in TRAINING:
        options = getattr(recipe, stage)
        if options is None:
            return None
        reserved = {"kind", "out_dir", "resume", "teacher", "student", "pairs", "dataset_id"}
        if stage == "value":
            reserved |= {"horizon", "stride", "plan_dims"}  # the plans': the teacher's
        if stage == "invdyn":
            reserved |= {"horizon"}  # its stride is k, by default the plans' stride
        if stage == "distance":
            reserved |= {"horizon", "stride"}  # it reads single states
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
                                "stride": plans.stride, "plan_dims": plans.plan_dims},
            "invdyn": plans and {"dataset_id": plans.dataset_id,
                                 "stride": options.get("stride", plans.stride)},
            "distance": {"dataset_id": recipe.data["dataset_id"]},
        }[stage]
        if stage == "invdyn":
            options = {k: v for k, v in options.items() if k != "stride"}
            from ctp.models.inverse_dynamics import check_reach

            _build(where, lambda: check_reach(links["stride"], plans.stride, plans.horizon,
                                              options.get("target_dims", 0)))
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
    if stage == "data":
        _build(where, lambda: check_options([
            int_option(key, recipe.data[key], low, high)
            for key, low, high in (("steps", 1, MAX_COUNT), ("seed", 0, MAX_SEED))
            if key in recipe.data]))
    if stage == "bundle":
        _build(where, lambda: _check_bundle(recipe.bundle, recipe.data["dataset_id"]))
        if recipe.bundle.get("target_radius") is not None:
            _build(where, lambda: _check_targeting(recipe))
    if stage in ("select", "evaluate"):
        options = getattr(recipe, stage)
        if options is None:
            return None
        _build(where, lambda: check_options([
            int_option(key, options[key], low, high)
            for key, low, high in (("episodes", 1, MAX_COUNT), ("seed", 0, MAX_SEED),
                                   ("num_envs", 1, MAX_COUNT)) if key in options]))
        if stage == "select":
            _build(where, lambda: _check_apart(options, recipe.evaluate))
    return {"data": recipe.data, "bundle": recipe.bundle, "select": recipe.select,
            "evaluate": recipe.evaluate}[stage]


def _imported_teacher(options: Mapping[str, Any], dataset_id: str, out: Path, where: str
                      ) -> Any:
    """The config of a teacher taken from a planner file instead of trained (``[teacher]
    from_planner`` in ``options``): its dataset must be the recipe's, and a ``hindsight_goals``
    the table gives must be the one the file records (its students inherit that one)."""
    from ctp.planning.bundle import load_planner_file
    from ctp.training.config import TrainConfig

    planner = options[FROM_PLANNER]
    if not isinstance(planner, str) or not planner:
        raise CTPError(f"{where} {FROM_PLANNER}: expected a planner file path, got {planner!r}")
    payload = _build(f"{where} {FROM_PLANNER}", lambda: load_planner_file(planner))
    if payload.get("teacher") is None:
        raise CTPError(f"{where} {FROM_PLANNER}: {planner} holds no teacher")
    if payload["dataset_id"] != dataset_id:
        raise CTPError(f"{where} {FROM_PLANNER}: {planner}'s teacher was trained on "
                       f"{payload['dataset_id']}, [data] names {dataset_id}")
    recorded = float(payload["teacher"].get("hindsight_goals", 0.0))
    asked = options.get("hindsight_goals", recorded)
    if asked != recorded:
        raise CTPError(f"{where} hindsight_goals: {planner}'s teacher was trained with "
                       f"hindsight_goals = {recorded:g} (files bundled before they were "
                       f"recorded read 0), the table asks for {asked!r}; its students inherit "
                       "the file's: drop the option or train the teacher")
    unet = payload["teacher"]["unet"]
    return TrainConfig(kind="teacher", out_dir=str(out / "teacher"), dataset_id=dataset_id,
                       horizon=payload["horizon"], stride=payload["stride"], dim=unet["dim"],
                       dim_mults=tuple(unet["dim_mults"]), hindsight_goals=recorded)


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
    from ctp.planning.config import PlannerConfig
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


def _check_targeting(recipe: Recipe) -> None:
    """``target_radius`` acts through the goal distance and inverse dynamics reading the
    goal's dims: the recipe must train both."""
    from ctp.tasks import planning_task, task_for_dataset

    dims = planning_task(task_for_dataset(recipe.data["dataset_id"])).goal_dims
    if not dims or recipe.distance is None or recipe.invdyn is None \
            or recipe.invdyn.get("target_dims") != dims:
        raise CTPError(f"target_radius: needs a goal task, a [distance] table and an [invdyn] "
                       f"table with target_dims = {dims or 'the goal dims'}")


def parse_override(text: str) -> tuple[str, Any]:
    """``TABLE.KEY=VALUE`` (VALUE in TOML syntax; a bare word is a string) -> (key, value)."""
    dotted, sep, value = text.partition("=")
    if not sep or not dotted:
        raise CTPError(f"--set {text!r}: expected TABLE.KEY=VALUE, e.g. teacher.steps=2000")
    try:
        return dotted.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return dotted.strip(), value
