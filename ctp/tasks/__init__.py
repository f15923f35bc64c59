"""Environment families ctp knows, one subpackage each, and their registry by name.

``get_task("pointmaze")``, ``task_for_dataset(dataset_id)`` and ``task_for_env(env)`` return
the ``ctp.tasks.base.Task`` the method trains, plans and evaluates with; ``planning_task``
narrows one to a ``PlanningTask``. Tasks are imported on first use, so importing ``ctp.tasks``
stays cheap and task modules may import ``ctp.tasks.base``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ctp.utils.errors import CTPError

if TYPE_CHECKING:
    from ctp.tasks.base import PlanningTask, Task

DEFAULT_TASK = "pointmaze"  # planner files that record no task were made for it
DEFAULT_ENV = "pointmaze-umaze"  # ctp plan and load_planner() without --env
DEFAULT_DATASET = "ctp/pointmaze/umaze-v1"  # ctp train without --dataset


@cache
def registry() -> dict[str, Task]:
    """The registered tasks by name. A new family adds itself here (its one line below); a
    test may add a toy task with ``monkeypatch.setitem(registry(), name, task)``."""
    from ctp.tasks.antmaze.task import ANTMAZE
    from ctp.tasks.locomotion.task import LOCOMOTION
    from ctp.tasks.pointmaze.task import POINTMAZE

    return {task.name: task for task in (POINTMAZE, LOCOMOTION, ANTMAZE)}


def _generators() -> dict[str, str]:
    """``ctp data generate`` names -> the module whose ``generate_by_name`` makes them. Names
    come from each family's spec module, which imports neither torch nor Minari."""
    from ctp.tasks.antmaze.spec import DATASET_NAMES as ANTMAZE_NAMES
    from ctp.tasks.locomotion.spec import DATASET_NAMES as LOCOMOTION_NAMES
    from ctp.tasks.pointmaze.spec import DATASET_NAMES as POINTMAZE_NAMES

    return {**dict.fromkeys(POINTMAZE_NAMES, "ctp.tasks.pointmaze.generate"),
            **dict.fromkeys(LOCOMOTION_NAMES, "ctp.tasks.locomotion.generate"),
            **dict.fromkeys(ANTMAZE_NAMES, "ctp.tasks.antmaze.generate")}


# An upper bound of a Minari dataset's size per step here (AntMaze, the widest: 31 float64
# observation values, 8 actions, reward and flags, in HDF5 with its chunk overhead).
DATASET_BYTES_PER_STEP = 512


def dataset_names() -> tuple[str, ...]:
    """The dataset names ``ctp data generate`` takes, every family's."""
    return tuple(_generators())


def generate_dataset(name: str, **options: Any) -> str:
    """Generate dataset ``name`` (e.g. ``pointmaze-umaze``, ``hopper-medium``) with its
    family's generator; ``options`` are ``ctp data generate``'s (steps, seed, force, progress
    and the family's own). Returns the one-line summary."""
    import importlib

    from ctp.data.minari_io import datasets_root
    from ctp.utils.validation import MAX_COUNT, MAX_SEED, check_options, check_room, int_option

    check_options([int_option(f"--{key.replace('_', '-')}", options[key], low, high)
                   for key, low, high in (("steps", 1, MAX_COUNT), ("seed", 0, MAX_SEED),
                                          ("policy_seed", 0, MAX_SEED)) if key in options])
    if "steps" in options:  # the staged copy and the dataset: twice its size, at most
        check_room("the Minari data folder", datasets_root(),
                   2 * options["steps"] * DATASET_BYTES_PER_STEP / 2**20)
    generators = _generators()
    if name.startswith("antmaze-") and name not in generators:
        from ctp.tasks.antmaze.spec import get_spec

        get_spec(name)  # names the maze or kind at fault
    if name not in generators:
        raise CTPError(f"unknown dataset {name!r}: expected one of {', '.join(generators)}")
    return importlib.import_module(generators[name]).generate_by_name(name, **options)


def task_names() -> tuple[str, ...]:
    """The registered task names."""
    return tuple(registry())


def get_task(name: str) -> Task:
    """The task registered as ``name``."""
    tasks = registry()
    if name not in tasks:
        raise CTPError(f"unknown task {name!r}: expected one of {', '.join(tasks)}")
    return tasks[name]


def dataset_id_of_name(name: str) -> str | None:
    """The id of the dataset ``ctp data generate NAME`` writes (``pointmaze-umaze`` ->
    ``ctp/pointmaze/umaze-v1``, ``hopper-medium`` -> ``ctp/mujoco/hopper/medium-v1``); None
    if ``name`` is no such name."""
    import re

    if name not in dataset_names():
        return None
    for task in registry().values():
        for dataset_id in task.dataset_ids():
            key = re.sub(r"-v\d+$", "", dataset_id.removeprefix("ctp/")).replace("/", "-")
            if key == name or key.endswith(f"-{name}"):
                return dataset_id
    return None


def task_for_dataset(dataset_id: str) -> Task:
    """The task whose datasets include ``dataset_id`` (a dataset name instead of an id: the
    error names the id)."""
    for task in registry().values():
        if task.owns_dataset(dataset_id):
            return task
    known = dataset_id_of_name(dataset_id)
    hint = f"; {dataset_id} is a dataset name, its id is {known}" if known else ""
    raise CTPError(f"{dataset_id}: not a dataset id of any task ctp knows "
                   f"({', '.join(registry())}){hint}")


def planning_task(task: Task) -> PlanningTask:
    """``task`` if it can plan, else a CTPError naming it."""
    from ctp.tasks.base import PlanningTask

    if not isinstance(task, PlanningTask):
        raise CTPError(f"task {task.name!r} cannot plan yet (data and training only)")
    return task


def task_for_env(env: str) -> PlanningTask:
    """The planning task that ``env`` (a ``ctp plan --env`` name) belongs to."""
    from ctp.tasks.base import PlanningTask

    for task in registry().values():
        if isinstance(task, PlanningTask) and task.owns_env(env):
            return task
    raise CTPError(f"unknown env {env!r}: expected a task's env, e.g. {DEFAULT_ENV}")
