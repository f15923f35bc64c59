"""How plans are made and chosen (``PlannerConfig``), and the settings a planner file was
shipped with (``defaults_of``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctp.planning import scorers as scoring
from ctp.tasks.base import VELOCITY_SOURCES
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_options, finite, int_option

# K per env: 4096 candidates of a horizon-64 plan already hold 1M states per env and call.
MAX_CANDIDATES = 4096


@dataclass
class PlannerConfig:
    """How plans are made and chosen."""

    candidates: int = 16  # K per environment
    sampler: str = "ctm"  # ctm (student, `jumps` NFE) or edm (teacher Heun, 2N-1 NFE)
    jumps: int = 1
    edm_steps: int = 18
    gamma: float = 0.0
    dyn_weight: float | None = None  # sets scorers["dynamics"] (--dyn-weight)
    critic_weight: float | None = None  # sets scorers["critic"] (--critic-weight; needs a critic)
    goal_radius: float | None = None  # goal scorer's success radius (None: the task's)
    # What the controller aims for: the plan's own velocities (plan) or those its positions
    # imply (positions; PointMaze, docs/design.md "Tracking a plan").
    velocities: str = "plan"
    # Env steps ahead on the plan that an inverse-dynamics controller aims at (None: the
    # model's own k). AntMaze: k = 5 acts best, but the plan's first states jitter, so the ant
    # heads for a state further on (the model clips how far it is asked to go).
    aim: int | None = None
    # Act toward a state instead of a plan (goal tasks with a goal distance and an action
    # model that reads positions): among every candidate's states within this radius of the
    # agent's position (env units; AntMaze: metres), the one the goal distance puts nearest
    # the goal; the action model is asked its full reach toward it. None: the best-scored
    # plan, aimed `aim` env steps ahead (docs/design.md "Acting toward a state").
    target_radius: float | None = None
    # With target_radius: env steps an agent that stopped moving (under 0.3 env units in 40
    # steps, e.g. an ant wedged on a wall's corner) walks straight away from its target
    # before heading for the targets again. None: never (docs/design.md "Backing off").
    back_off: int | None = None
    compile: bool = False  # torch.compile sample + score, weights frozen (one compile per E)
    # Scorer name -> weight over the task's default weights (ctp.planning.scorers); the
    # planner file's "scorers" entry, and dyn_weight / critic_weight on top.
    scorers: dict[str, float] | None = None

    def validate(self) -> None:
        check_options([
            (1 <= self.candidates <= MAX_CANDIDATES, "--candidates",
             f">= 1 and <= {MAX_CANDIDATES}", self.candidates),
            int_option("--jumps", self.jumps),
            int_option("--edm-steps", self.edm_steps),
            (self.sampler in ("ctm", "edm"), "--sampler", "ctm or edm", self.sampler),
            (0.0 <= self.gamma < 1.0, "--gamma", "in [0, 1)", self.gamma),
            (self.dyn_weight is None or finite(self.dyn_weight), "--dyn-weight",
             "a finite number", self.dyn_weight),
            (self.critic_weight is None or finite(self.critic_weight), "--critic-weight",
             "a finite number", self.critic_weight),
            (self.goal_radius is None or (finite(self.goal_radius) and self.goal_radius > 0),
             "goal_radius", "a finite number > 0", self.goal_radius),
            (self.aim is None or (isinstance(self.aim, int) and self.aim >= 1), "--aim",
             "env steps >= 1", self.aim),
            (self.target_radius is None
             or (isinstance(self.target_radius, int | float) and finite(self.target_radius)
                 and self.target_radius > 0),
             "--target-radius", "a finite number > 0", self.target_radius),
            (self.back_off is None or (isinstance(self.back_off, int) and self.back_off >= 1),
             "--back-off", "env steps >= 1 (0 on ctp plan: off)", self.back_off),
            (self.back_off is None or self.target_radius is not None, "--back-off",
             "--target-radius set too (it backs away from the chosen state)", self.back_off),
            (self.velocities in VELOCITY_SOURCES, "--velocities",
             f"one of {', '.join(VELOCITY_SOURCES)}", self.velocities),
        ])

    @property
    def nfe(self) -> int:
        """Network evaluations per plan."""
        return self.jumps if self.sampler == "ctm" else 2 * self.edm_steps - 1


def defaults_of(payload: dict[str, Any]) -> PlannerConfig:
    """The planner settings a planner file was shipped with: its ``defaults`` and its
    ``scorers`` (files without that entry record ``dyn_weight`` / ``critic_weight`` in
    ``defaults``; read as those scorers' weights over the task's defaults)."""
    defaults = {k: v for k, v in (payload.get("defaults") or {}).items() if k != "replan"}
    weights = payload.get("scorers")
    if weights is None:  # older files
        weights = {scoring.ALIASES[flag]: defaults[flag] for flag in scoring.ALIASES
                   if defaults.get(flag) is not None}
    elif not isinstance(weights, dict):
        raise CTPError(f"scorers: expected a mapping of scorer name to weight, got "
                       f"{type(weights).__name__}")
    for flag in scoring.ALIASES:
        defaults.pop(flag, None)
    return PlannerConfig(**defaults, scorers=dict(weights))
