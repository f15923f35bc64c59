"""The configuration of one training run (``TrainConfig``, saved in every checkpoint), its
range checks (``validate``) and what a ctm or critic run takes from its parent checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ctp.data.normalizer import Normalizer
from ctp.models.builder import normalizer_of
from ctp.models.ctm import CTMConfig
from ctp.tasks import DEFAULT_DATASET
from ctp.utils.checkpoint import load_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import (
    MAX_LR,
    MAX_SEED,
    check_options,
    finite,
    int_option,
    resolve_device,
)

LR_SCHEDULES = ("constant", "cosine")
# One objective per kind (``ctp.training.objectives.OBJECTIVES``, in this order).
TRAIN_KINDS = ("teacher", "ctm", "critic", "value", "invdyn", "distance")
# The values of the ``TrainConfig`` fields left at None: the base ones
# (``Objective.defaults``) and each objective's over them (its class's ``defaults``).
BASE_DEFAULTS: dict[str, Any] = {"lr": 2e-4, "ema_decay": 0.999, "stride": 4}
OBJECTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "teacher": BASE_DEFAULTS,
    # The CTM target network is the EMA: 0.95 lets the one-jump map follow within a few
    # hundred steps (0.999 needed thousands; docs/results.md section 6).
    "ctm": {"lr": 1e-4, "ema_decay": 0.95},
    "critic": BASE_DEFAULTS,
    "value": {"lr": 2e-4, "ema_decay": 0.99},
    "invdyn": {"lr": 3e-4, "ema_decay": 0.99, "stride": 1},
    "distance": {"lr": 3e-4, "ema_decay": 0.99, "stride": 1},
}


@dataclass
class TrainConfig:
    """Everything one ``ctp train`` run needs; saved in every checkpoint."""

    kind: str = "teacher"  # teacher | ctm | critic | value | invdyn | distance
    dataset_id: str = DEFAULT_DATASET
    horizon: int = 32  # planned states per window
    stride: int | None = None  # env steps between planned states; None: the objective's
    # (4; invdyn 1, its k in a_t = f(s_t, s_{t+k}))
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4)
    batch_size: int = 64
    lr: float | None = None  # None: the objective's (Objective.defaults)
    lr_schedule: str = "constant"  # after the warm-up: constant | cosine (to lr_min at steps)
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps to lr
    lr_min: float = 0.0  # the cosine schedule's floor
    weight_decay: float = 0.0
    steps: int = 10_000
    max_minutes: float | None = None
    seed: int = 0
    out_dir: str | None = None  # None: runs/<kind>
    resume: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    device: str = "cpu"
    ema_decay: float | None = None  # None: the objective's (Objective.defaults)
    grad_clip: float = 1.0
    checkpoint_every: int = 1000
    keep_best: int = 2
    log_every: int = 50
    progress: bool = True
    teacher: str | None = None  # ctm: the teacher checkpoint
    student_dim: int | None = None  # ctm: a narrower student (channel subset of the teacher)
    pairs: str | None = None  # ctm: teacher ODE pairs (ctp pairs) to regress one jump on
    student: str | None = None  # critic: the CTM student checkpoint
    gamma: float = 0.99  # value: discount of the return-to-go target
    hidden: tuple[int, ...] = (256, 256)  # invdyn, distance: MLP hidden widths
    target_dims: int = 0  # invdyn: the target's leading dims it reads (0: all)
    plan_dims: int = 0  # teacher/value: plan the state's leading dims only (AntMaze: 2, its
    # x, y); 0: the whole state. ctm/critic runs plan their parent's (its normaliser's width)
    hindsight_goals: float = 0.0  # teacher (goal tasks): share of windows whose goal is a
    # later state of the episode, held from its step on (ctp.data.windows); ctm/critic: parent's
    expectile: float = 0.1  # distance: the expectile of the data's times it fits (low: the
    # data's fast end; ctp.models.distance)
    waypoints: int = 0  # distance: waypoints of its own episode each pair bootstraps through
    # (stitching episodes; 0: the data's own times only)
    random_goals: float = 0.0  # distance: share of goals drawn from the whole data (needs
    # waypoints)
    ctm: CTMConfig = field(default_factory=CTMConfig)

    def __post_init__(self) -> None:
        self.dim_mults = tuple(self.dim_mults)
        self.hidden = tuple(self.hidden)
        if isinstance(self.ctm, dict):
            self.ctm = CTMConfig(**self.ctm)
        if self.kind not in TRAIN_KINDS:
            raise CTPError(f"kind: expected {' or '.join(TRAIN_KINDS)}, got {self.kind!r}")
        # An objective's defaults override the base ones it does not name.
        for name, value in {**BASE_DEFAULTS, **OBJECTIVE_DEFAULTS[self.kind]}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.out_dir is None:
            self.out_dir = f"runs/{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dim_mults"] = list(self.dim_mults)
        d["hidden"] = list(self.hidden)
        return d


def validate(cfg: TrainConfig) -> None:
    """Range checks with one-line errors naming the option."""
    check_options([
        (cfg.kind in TRAIN_KINDS, "kind", " or ".join(TRAIN_KINDS), cfg.kind),
        (cfg.horizon >= 2, "--horizon", ">= 2", cfg.horizon),
        (cfg.stride >= 1, "--stride", ">= 1", cfg.stride),
        (isinstance(cfg.target_dims, int) and cfg.target_dims >= 0, "--target-dims",
         "0 (all) or the number of leading state dims", cfg.target_dims),
        (isinstance(cfg.plan_dims, int) and cfg.plan_dims >= 0, "--plan-dims",
         "0 (the whole state) or the number of leading state dims", cfg.plan_dims),
        (finite(cfg.expectile) and 0.0 < cfg.expectile < 1.0, "--expectile", "in (0, 1)",
         cfg.expectile),
        (isinstance(cfg.waypoints, int) and cfg.waypoints >= 0, "--waypoints", "an int >= 0",
         cfg.waypoints),
        (finite(cfg.random_goals) and 0.0 <= cfg.random_goals < 1.0, "--random-goals",
         "a share in [0, 1)", cfg.random_goals),
        (not cfg.random_goals or cfg.waypoints, "--random-goals",
         "0 without --waypoints (a goal of another episode has no time to fit, only a "
         "bootstrap through waypoints)", cfg.random_goals),
        (finite(cfg.hindsight_goals) and 0.0 <= cfg.hindsight_goals <= 1.0,
         "--hindsight-goals", "a share in [0, 1]", cfg.hindsight_goals),
        (cfg.dim >= 8 and cfg.dim % 8 == 0, "--dim", "a positive multiple of 8", cfg.dim),
        (cfg.student_dim is None or (cfg.student_dim >= 8 and cfg.student_dim % 8 == 0),
         "--dim", "a positive multiple of 8", cfg.student_dim),
        (min(cfg.dim_mults, default=0) >= 1, "--dim-mults", "positive ints", cfg.dim_mults),
        (cfg.batch_size >= 1, "--batch-size", ">= 1", cfg.batch_size),
        (finite(cfg.lr) and 0 < cfg.lr <= MAX_LR, "--lr",
         f"a finite positive number <= {MAX_LR:g}", cfg.lr),
        (cfg.lr_schedule in LR_SCHEDULES, "--lr-schedule", " or ".join(LR_SCHEDULES),
         cfg.lr_schedule),
        int_option("--warmup-steps", cfg.warmup_steps, 0),
        (finite(cfg.lr_min) and 0 <= cfg.lr_min <= cfg.lr, "--lr-min",
         "a finite number in [0, --lr]", cfg.lr_min),
        (finite(cfg.weight_decay) and cfg.weight_decay >= 0, "weight_decay",
         "a finite number >= 0", cfg.weight_decay),
        int_option("--steps", cfg.steps),
        int_option("--seed", cfg.seed, 0, MAX_SEED),
        (cfg.max_minutes is None or (finite(cfg.max_minutes) and cfg.max_minutes > 0),
         "--max-minutes", "a finite number > 0", cfg.max_minutes),
        (0.0 <= cfg.ema_decay < 1.0, "--ema", "in [0, 1)", cfg.ema_decay),
        (finite(cfg.grad_clip) and cfg.grad_clip > 0, "--grad-clip", "a finite number > 0",
         cfg.grad_clip),
        int_option("--checkpoint-every", cfg.checkpoint_every),
        (cfg.keep_best >= 0, "--keep-best", ">= 0", cfg.keep_best),
        (cfg.log_every >= 1, "log_every", ">= 1", cfg.log_every),
        (finite(cfg.gamma) and 0.0 < cfg.gamma <= 1.0, "--gamma", "a number in (0, 1]",
         cfg.gamma),
        (len(cfg.hidden) >= 1 and min(cfg.hidden) >= 1, "--hidden",
         "positive ints, e.g. 256,256", ",".join(map(str, cfg.hidden))),
        (cfg.ctm.max_teacher_steps >= 1, "--teacher-steps", ">= 1", cfg.ctm.max_teacher_steps),
        (cfg.ctm.grid_size >= 3, "--grid-size", ">= 3", cfg.ctm.grid_size),
        (finite(cfg.ctm.lambda_dsm) and cfg.ctm.lambda_dsm >= 0, "--lambda-dsm",
         "a finite number >= 0", cfg.ctm.lambda_dsm),
        (0.0 <= cfg.ctm.s_zero_prob <= 1.0, "--s-zero-prob", "in [0, 1]", cfg.ctm.s_zero_prob),
        (0.0 <= cfg.ctm.top_jump_prob <= 1.0, "--top-jump-prob", "in [0, 1]",
         cfg.ctm.top_jump_prob),
        (finite(cfg.ctm.pair_weight) and cfg.ctm.pair_weight >= 0.0, "--pair-weight",
         ">= 0", cfg.ctm.pair_weight),
    ])
    resolve_device(cfg.device)
    if cfg.cuda_graphs and (cfg.lr_schedule != "constant" or cfg.warmup_steps):
        raise CTPError("--cuda-graphs: the captured step holds a fixed learning rate; drop "
                       "--cuda-graphs or train with --lr-schedule constant and no --warmup-steps")
    if cfg.kind == "ctm" and not cfg.teacher:
        raise CTPError("--teacher: ctm training needs the teacher checkpoint")
    if cfg.kind == "critic" and not cfg.student:
        raise CTPError("--student: critic training needs the CTM student checkpoint")
    factor = 2 ** (len(cfg.dim_mults) - 1)
    if cfg.horizon % factor:
        raise CTPError(
            f"--horizon: {cfg.horizon} is not divisible by the U-Net's down-sampling factor "
            f"{factor} (--dim-mults {','.join(map(str, cfg.dim_mults))})"
        )


def _resolve_from_parent(cfg: TrainConfig) -> Normalizer | None:
    """ctm/critic runs inherit dataset, horizon, stride and normaliser from their parent."""
    parent = cfg.teacher if cfg.kind == "ctm" else cfg.student if cfg.kind == "critic" else None
    if parent is None:
        return None
    payload = load_checkpoint(parent, "teacher" if cfg.kind == "ctm" else "ctm")
    for name in ("dataset_id", "horizon", "stride"):
        setattr(cfg, name, payload[name])
    cfg.hindsight_goals = payload["config"].get("hindsight_goals", 0.0)
    cfg.dim = payload["unet"]["dim"]
    cfg.dim_mults = tuple(payload["unet"]["dim_mults"])
    if cfg.student_dim is not None and cfg.student_dim > cfg.dim:
        raise CTPError(f"--dim: expected at most the teacher's width {cfg.dim}, "
                       f"got {cfg.student_dim}")
    return normalizer_of(payload, parent)
