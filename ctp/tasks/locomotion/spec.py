"""The three locomotion tasks, their datasets and D4RL's reference constants.

Datasets follow D4RL's Gym-MuJoCo recipe (Fu et al. 2020) on Gymnasium's ``*-v4`` envs, which
keep the dynamics of the gym v3 envs D4RL used. ``medium`` is 1M transitions of a SAC policy
stopped at about a third of expert level; ``medium-replay`` is that run's replay buffer up to
the same checkpoint. Ids are ctp's own (``ctp/mujoco/<task>/<kind>-v1``), never D4RL's or
Minari's, because the data are regenerated here, not copied.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctp.utils.errors import CTPError

KINDS = ("medium", "medium-replay")
# D4RL's infos.py: random- and expert-policy returns of the v3 envs (shared by the v4 envs).
REF_SOURCE = "D4RL infos.py (Fu et al. 2020), gym v3 envs"
# Metadata key: the behaviour actor's task, seed, step and evaluation return.
BEHAVIOUR_KEY = "ctp_behaviour_policy"


@dataclass(frozen=True)
class LocomotionSpec:
    """One locomotion task: env, D4RL constants, and when its SAC run is 'medium'."""

    name: str  # "hopper"
    env_id: str  # Gymnasium id, e.g. "Hopper-v4"
    obs_dim: int
    act_dim: int
    ref_min_score: float
    ref_max_score: float
    # D4RL-normalised deterministic evaluation return at which the SAC run is medium level:
    # the middle of where D4RL's medium datasets sit (hopper 45-55, walker2d 60-75, cheetah 40).
    medium_target: float
    # Where D4RL's medium dataset sits (D4RL-normalised); the medium checkpoint's stochastic
    # policy, which writes the dataset, must score at least the lower end.
    medium_band: tuple[float, float]

    def dataset_id(self, kind: str) -> str:
        """ctp's id of this task's ``kind`` dataset, e.g. ``ctp/mujoco/hopper/medium-v1``."""
        if kind not in KINDS:
            raise CTPError(f"dataset kind {kind!r}: expected one of {', '.join(KINDS)}")
        return f"ctp/mujoco/{self.name}/{kind}-v1"

    def make_env(self):
        """A Gymnasium env of this task (1000-step time limit), without v4's upgrade nag; its
        model compiled in this thread (``ctp.tasks.mujoco_compile``)."""
        import warnings

        import gymnasium as gym

        from ctp.tasks.mujoco_compile import models_compiled_in_this_thread

        with warnings.catch_warnings(), models_compiled_in_this_thread():
            warnings.filterwarnings("ignore", message=".*is out of date.*")
            return gym.make(self.env_id)

    def normalized(self, episode_return: float) -> float:
        """D4RL-normalised score: 100 (R - ref_min) / (ref_max - ref_min)."""
        return 100.0 * (episode_return - self.ref_min_score) / (
            self.ref_max_score - self.ref_min_score
        )


TASKS: dict[str, LocomotionSpec] = {
    spec.name: spec
    for spec in (
        LocomotionSpec("hopper", "Hopper-v4", 11, 3, -20.272305, 3234.3, 50.0, (45.0, 55.0)),
        LocomotionSpec("walker2d", "Walker2d-v4", 17, 6, 1.629008, 4592.3, 67.0, (60.0, 75.0)),
        LocomotionSpec("halfcheetah", "HalfCheetah-v4", 17, 6, -280.178953, 12135.0, 40.0,
                       (35.0, 45.0)),
    )
}
DATASET_NAMES = tuple(f"{task}-{kind}" for task in TASKS for kind in KINDS)


def get_task(name: str) -> LocomotionSpec:
    """The spec of task ``name`` (hopper, walker2d, halfcheetah)."""
    if name not in TASKS:
        raise CTPError(f"unknown locomotion task {name!r}: expected one of {', '.join(TASKS)}")
    return TASKS[name]


def parse_dataset_name(name: str) -> tuple[LocomotionSpec, str]:
    """``"hopper-medium-replay"`` -> (hopper's spec, ``"medium-replay"``)."""
    task, _, kind = name.partition("-")
    if task not in TASKS or kind not in KINDS:
        raise CTPError(f"unknown dataset {name!r}: expected one of {', '.join(DATASET_NAMES)}")
    return TASKS[task], kind


def task_for_dataset(dataset_id: str) -> tuple[LocomotionSpec, str] | None:
    """The (task, kind) of a local locomotion dataset id, ctp's or Minari's; else None."""
    parts = dataset_id.split("/")
    if len(parts) == 4 and parts[:2] == ["ctp", "mujoco"] and parts[2] in TASKS:
        kind = parts[3].rsplit("-v", 1)[0]
        return (TASKS[parts[2]], kind) if kind in KINDS else None
    if len(parts) == 3 and parts[0] == "mujoco" and parts[1] in TASKS:
        kind = parts[2].rsplit("-v", 1)[0]
        return (TASKS[parts[1]], kind) if kind in KINDS else None
    return None
