"""Training loops for the EDM teacher, the CTM student, the critic, the value network and
the inverse-dynamics model.

One loop serves all of them: an objective gives the trainable module, its EMA copy, its data
(dataset windows, or for invdyn transition pairs) and a loss per batch; the loop adds AdamW,
gradient clipping, EMA, data parallelism across processes, tqdm progress, a JSONL metrics
file, a time budget, atomic checkpoints and resume.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import signal
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ctp.data.normalizer import Normalizer
from ctp.data.windows import TrajectoryWindows, WindowConfig
from ctp.models.builder import build_teacher, load_model, normalizer_of, unet_config
from ctp.models.ctm import CTMConfig, CTMStudent, ctm_loss, ctm_sample, one_jump_loss
from ctp.models.edm import EDMConfig, edm_loss
from ctp.models.inverse_dynamics import InverseDynamics, TransitionPairs
from ctp.models.value import ReturnWindows, ValueNet
from ctp.nn import Critic, UNetConfig
from ctp.tasks import DEFAULT_DATASET, task_for_dataset
from ctp.tasks.base import StepStream, Task
from ctp.training.teacher_pairs import load_pairs
from ctp.utils.atomic import atomic_write, write_json
from ctp.utils.checkpoint import load_checkpoint, prune_checkpoints, save_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_options, finite, load_weights, resolve_device, same_file

LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Everything one ``ctp train`` run needs; saved in every checkpoint."""

    kind: str = "teacher"  # teacher | ctm | critic | value | invdyn
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
    hidden: tuple[int, ...] = (256, 256)  # invdyn: MLP hidden widths
    ctm: CTMConfig = field(default_factory=CTMConfig)

    def __post_init__(self) -> None:
        self.dim_mults = tuple(self.dim_mults)
        self.hidden = tuple(self.hidden)
        if isinstance(self.ctm, dict):
            self.ctm = CTMConfig(**self.ctm)
        if self.kind not in OBJECTIVES:
            raise CTPError(f"kind: expected {' or '.join(OBJECTIVES)}, got {self.kind!r}")
        # An objective's defaults override the base ones it does not name.
        for name, value in {**Objective.defaults, **OBJECTIVES[self.kind].defaults}.items():
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
        (cfg.kind in OBJECTIVES, "kind", " or ".join(OBJECTIVES), cfg.kind),
        (cfg.horizon >= 2, "--horizon", ">= 2", cfg.horizon),
        (cfg.stride >= 1, "--stride", ">= 1", cfg.stride),
        (cfg.dim >= 8 and cfg.dim % 8 == 0, "--dim", "a positive multiple of 8", cfg.dim),
        (cfg.student_dim is None or (cfg.student_dim >= 8 and cfg.student_dim % 8 == 0),
         "--dim", "a positive multiple of 8", cfg.student_dim),
        (min(cfg.dim_mults, default=0) >= 1, "--dim-mults", "positive ints", cfg.dim_mults),
        (cfg.batch_size >= 1, "--batch-size", ">= 1", cfg.batch_size),
        (finite(cfg.lr) and cfg.lr > 0, "--lr", "a finite number > 0", cfg.lr),
        (cfg.lr_schedule in LR_SCHEDULES, "--lr-schedule", " or ".join(LR_SCHEDULES),
         cfg.lr_schedule),
        (cfg.warmup_steps >= 0, "--warmup-steps", ">= 0", cfg.warmup_steps),
        (finite(cfg.lr_min) and 0 <= cfg.lr_min <= cfg.lr, "--lr-min",
         "a finite number in [0, --lr]", cfg.lr_min),
        (finite(cfg.weight_decay) and cfg.weight_decay >= 0, "weight_decay",
         "a finite number >= 0", cfg.weight_decay),
        (cfg.steps >= 1, "--steps", ">= 1", cfg.steps),
        (cfg.seed >= 0, "--seed", ">= 0", cfg.seed),
        (cfg.max_minutes is None or (finite(cfg.max_minutes) and cfg.max_minutes > 0),
         "--max-minutes", "a finite number > 0", cfg.max_minutes),
        (0.0 <= cfg.ema_decay < 1.0, "--ema", "in [0, 1)", cfg.ema_decay),
        (finite(cfg.grad_clip) and cfg.grad_clip > 0, "--grad-clip", "a finite number > 0",
         cfg.grad_clip),
        (cfg.checkpoint_every >= 1, "--checkpoint-every", ">= 1", cfg.checkpoint_every),
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


# ---------------------------------------------------------------------------- objectives


class Objective:
    """A trainable ``module``, its ``ema`` copy and ``loss(batch) -> (loss, parts)``.

    Built as ``Objective(cfg, device, obs_dim)`` with ``obs_dim`` the dataset's state width;
    ``defaults`` are the objective's values of the ``TrainConfig`` fields left at None (over
    the base class's). ``source`` is called once right after: it gives the data the batches
    come from (an object with ``len``, ``batch(idx) -> dict`` and ``normalizer``) and may
    finish the module from the data (invdyn: action width, input statistics).
    """

    defaults: ClassVar[dict[str, Any]] = {"lr": 2e-4, "ema_decay": 0.999, "stride": 4}
    module: nn.Module
    ema: nn.Module
    unet: UNetConfig
    edm: EDMConfig

    def source(self, cfg: TrainConfig, task: Task, data: StepStream,
               normalizer: Normalizer | None) -> Any:
        """Dataset windows of the run's horizon and stride (their condition included)."""
        return TrajectoryWindows(task, data, WindowConfig(cfg.horizon, cfg.stride), normalizer)

    def network_payload(self) -> dict[str, Any]:
        """The network configs a checkpoint records (rebuilt from them by the loaders)."""
        return {"unet": self.unet.to_dict() | {"dim_mults": list(self.unet.dim_mults)},
                "edm": self.edm.to_dict()}

    def loss(self, batch: dict[str, torch.Tensor], k: int) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError


class TeacherObjective(Objective):
    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.unet = UNetConfig(obs_dim=obs_dim, horizon=cfg.horizon, dim=cfg.dim,
                               dim_mults=cfg.dim_mults, backend="auto")
        self.edm = EDMConfig()
        self.module = build_teacher(self.unet, self.edm).to(device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)

    def loss(self, batch, k):
        loss = edm_loss(self.module, batch["x"], batch["mask"], batch["value"], self.edm)
        return loss, {}


class CTMObjective(Objective):
    """CTM + DSM, plus with ``pairs`` the one-jump regression on teacher ODE pairs (a batch
    of pairs drawn with the default generator each step: graph-safe)."""

    # The CTM target network is the EMA: 0.95 lets the one-jump map follow within a few
    # hundred steps (0.999 needed thousands; docs/results.md section 6).
    defaults: ClassVar[dict[str, Any]] = {"lr": 1e-4, "ema_decay": 0.95}

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.teacher, payload = load_model(cfg.teacher, "teacher", str(device))
        _check_obs_dim(self.teacher.net.cfg, obs_dim, "--teacher")
        self.edm = self.teacher.cfg
        self.ctm = cfg.ctm
        self.module = CTMStudent.from_teacher(self.teacher, cfg.student_dim)
        self.module.train().requires_grad_(True)
        self.unet = self.module.net.cfg
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        # The pairs were drawn from the teacher's dataset: its task conditions them.
        self.task = task_for_dataset(payload["dataset_id"])
        self.pairs = ({k: v.to(device) for k, v in
                       load_pairs(cfg.pairs, payload, self.teacher).items()}
                      if cfg.pairs else None)

    def loss(self, batch, k):
        loss, parts = ctm_loss(self.module, self.ema, self.teacher, batch["x"], batch["mask"],
                               batch["value"], self.ctm, k=k)
        if self.pairs is None:
            return loss, parts
        x = batch["x"]
        idx = torch.randint(0, self.pairs["noise"].shape[0], (x.shape[0],), device=x.device)
        mask, value = self.task.condition(self.pairs["start"][idx], self.pairs["goal"][idx],
                                          x.shape[1])
        pair = one_jump_loss(self.module, self.pairs["noise"][idx], mask, value,
                             self.pairs["target"][idx])
        return loss + self.ctm.pair_weight * pair, {**parts, "pair": pair.detach()}


class CriticObjective(Objective):
    """Real dataset windows (label 1) vs. one-jump student samples with the same condition."""

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.student, payload = load_model(cfg.student, "ctm", str(device))
        self.unet = unet_config(payload, s_embedding=False)
        _check_obs_dim(self.unet, obs_dim, "--student")
        self.edm = self.student.edm
        self.module = Critic(self.unet).to(device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)

    def loss(self, batch, k):
        x, mask, value = batch["x"], batch["mask"], batch["value"]
        with torch.no_grad():
            noise = torch.randn_like(x) * self.edm.sigma_max
            fake = ctm_sample(self.student, noise, mask, value, jumps=1)
        logits = self.module(torch.cat([x, fake]), torch.cat([mask, mask]),
                             torch.cat([value, value]))
        labels = torch.cat([torch.ones(len(x)), torch.zeros(len(x))]).to(logits)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        accuracy = ((logits > 0).float() == labels).float().mean()
        return loss, {"accuracy": accuracy.detach()}


class ValueObjective(Objective):
    """V(window) regressed on the discounted return-to-go of the window's first step
    (``ctp.models.value``): MSE on the target standardised with its mean and std over the
    training windows (kept in the network's buffers and the checkpoint's ``returns``)."""

    defaults: ClassVar[dict[str, Any]] = {"lr": 2e-4, "ema_decay": 0.99}

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.unet = UNetConfig(obs_dim=obs_dim, horizon=cfg.horizon, dim=cfg.dim,
                               dim_mults=cfg.dim_mults, backend="auto")
        self.module = ValueNet(self.unet).to(device)

    def source(self, cfg, task, data, normalizer):
        windows = ReturnWindows(super().source(cfg, task, data, normalizer), cfg.gamma)
        self.stats = {"gamma": cfg.gamma, "mean": windows.mean, "std": windows.std}
        self.module.set_target_stats(windows.mean, windows.std)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        return windows

    def network_payload(self):
        return {"unet": self.unet.to_dict() | {"dim_mults": list(self.unet.dim_mults)},
                "edm": None, "returns": dict(self.stats)}

    def loss(self, batch, k):
        net = self.module  # through forward (what --compile compiles), then standardised
        pred = (net(batch["x"], batch["mask"], batch["value"]) - net.ret_mean) / net.ret_std
        return F.mse_loss(pred, batch["target"]), {}


class InvDynObjective(Objective):
    """``a_t = f(s_t, s_{t+k})`` with k = ``stride`` (``ctp.models.inverse_dynamics``): MSE on the
    dataset's transition pairs, raw states in, raw actions out."""

    defaults: ClassVar[dict[str, Any]] = {"lr": 3e-4, "ema_decay": 0.99, "stride": 1}

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.device, self.hidden = device, cfg.hidden  # the module is built from the data

    def source(self, cfg, task, data, normalizer):
        pairs = TransitionPairs(data, cfg.stride, normalizer)
        self.module = InverseDynamics(pairs.obs_dim, pairs.act_dim, self.hidden, cfg.stride)
        self.module.set_input_stats(pairs.inputs)
        self.module.to(self.device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        return pairs

    def network_payload(self):
        return {"unet": None, "edm": None, "invdyn": self.module.config()}

    def loss(self, batch, k):
        x, d = batch["inputs"], self.module.obs_dim
        return F.mse_loss(self.module(x[:, :d], x[:, d:]), batch["actions"]), {}


OBJECTIVES: dict[str, type[Objective]] = {
    "teacher": TeacherObjective, "ctm": CTMObjective, "critic": CriticObjective,
    "value": ValueObjective, "invdyn": InvDynObjective,
}


def _check_obs_dim(unet: UNetConfig, obs_dim: int, option: str) -> None:
    """Refuse a parent network whose state width is not the dataset's."""
    if unet.obs_dim != obs_dim:
        raise CTPError(f"{option}: its network plans {unet.obs_dim}-dim states, the dataset "
                       f"has {obs_dim}-dim observations")


def _resolve_from_parent(cfg: TrainConfig) -> Normalizer | None:
    """ctm/critic runs inherit dataset, horizon, stride and normaliser from their parent."""
    parent = cfg.teacher if cfg.kind == "ctm" else cfg.student if cfg.kind == "critic" else None
    if parent is None:
        return None
    payload = load_checkpoint(parent, "teacher" if cfg.kind == "ctm" else "ctm")
    for name in ("dataset_id", "horizon", "stride"):
        setattr(cfg, name, payload[name])
    cfg.dim = payload["unet"]["dim"]
    cfg.dim_mults = tuple(payload["unet"]["dim_mults"])
    if cfg.student_dim is not None and cfg.student_dim > cfg.dim:
        raise CTPError(f"--dim: expected at most the teacher's width {cfg.dim}, "
                       f"got {cfg.student_dim}")
    return normalizer_of(payload, parent)


# Config fields a run's weights depend on, per kind: a resumed run must ask for the same.
# (A ctm student's width is checked against its checkpoint's network; dim is the teacher's.)
RESUME_FIELDS = {
    "teacher": ("dataset_id", "horizon", "stride", "dim", "dim_mults"),
    "ctm": ("dataset_id", "horizon", "stride", "dim_mults", "teacher"),
    "critic": ("dataset_id", "horizon", "stride", "dim", "dim_mults", "student"),
    "value": ("dataset_id", "horizon", "stride", "dim", "dim_mults", "gamma"),
    "invdyn": ("dataset_id", "stride", "hidden"),
}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # save a checkpoint, then stop


def _resume_payload(cfg: TrainConfig, out: Path) -> dict[str, Any] | None:
    """The checkpoint ``--resume`` continues (None without --resume); a missing one is an
    error, not a silent fresh start, and a fresh start never replaces one."""
    latest = out / "latest.pt"
    if out.exists() and not out.is_dir():
        raise CTPError(f"--out: {out} is a file, expected a folder for the run")
    if not cfg.resume:
        if latest.exists():
            raise CTPError(f"--out: {out} already holds a run ({latest}); pass --resume to "
                           "continue it or choose another --out")
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


# ------------------------------------------------------------------------- the loop


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


class WindowSampler:
    """Endless random batches of window indices; each epoch visits every window once.

    Ranks take disjoint strided slices of one shared permutation.
    """

    def __init__(self, n: int, batch: int, seed: int, info: DistInfo) -> None:
        self.n, self.batch, self.info = n, batch, info
        self.rng = np.random.default_rng(seed)
        self._queue = np.empty(0, dtype=np.int64)

    def next(self) -> np.ndarray:
        while len(self._queue) < self.batch:
            perm = self.rng.permutation(self.n)[self.info.rank :: self.info.world]
            self._queue = np.concatenate([self._queue, perm])
        out, self._queue = self._queue[: self.batch], self._queue[self.batch :]
        return out


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning rate of the update after ``step`` done ones, over ``cfg.lr``: a linear
    warm-up 1/W, 2/W, ..., 1 over the first ``warmup_steps`` = W updates, then 1 (constant)
    or a cosine from 1 down to ``lr_min / lr`` at the last of ``cfg.steps`` (and after it)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    floor = cfg.lr_min / cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - 1 - cfg.warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer,
                 payload: dict[str, Any] | None) -> torch.optim.lr_scheduler.LambdaLR:
    """``cfg.lr * lr_factor(cfg, step)`` as a LambdaLR. Resumed from ``payload``: at its
    saved position (its ``scheduler`` state dict; a checkpoint without one, made before
    schedules or by unbundle, at its step), on this run's ``--lr`` and schedule options."""
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(cfg, step))
    if payload is None:
        return scheduler
    scheduler.load_state_dict(payload.get("scheduler")
                              or {"last_epoch": int(payload["step"]), "lr_lambdas": [None]})
    scheduler.base_lrs = [cfg.lr for _ in opt.param_groups]
    for group in opt.param_groups:
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * lr_factor(cfg, scheduler.last_epoch)
    return scheduler


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=False):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=False):
        e.copy_(b)


def _average_gradients(module: nn.Module, info: DistInfo) -> None:
    """All-reduce and average gradients across ranks (what DDP's reducer does)."""
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= info.world


def _checkpoint_payload(cfg, obj, opt, scheduler, normalizer, step, loss) -> dict[str, Any]:
    return {
        "kind": cfg.kind,
        "config": cfg.to_dict(),
        **obj.network_payload(),
        "ctm": cfg.ctm.to_dict(),
        "model": obj.module.state_dict(),
        "ema": obj.ema.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": scheduler.state_dict(),
        "normalizer": normalizer.state_dict(),
        "dataset_id": cfg.dataset_id,
        "horizon": cfg.horizon,
        "stride": cfg.stride,
        "step": step,
        "loss": loss,
    }


@dataclass
class TrainResult:
    latest: Path  # the latest checkpoint (written by rank 0)
    step: int
    module: nn.Module  # this rank's trained network
    stopped_by: int | None = None  # the signal (SIGINT, SIGTERM) that ended the run early


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one training run."""
    validate(cfg)
    device = resolve_device(cfg.device)
    if cfg.cuda_graphs and device.type != "cuda":
        warnings.warn("--cuda-graphs needs a CUDA device; training eagerly", stacklevel=2)
        cfg.cuda_graphs = False
    info = init_distributed(device)
    torch.manual_seed(cfg.seed + info.rank)
    out = Path(cfg.out_dir)
    payload = _resume_payload(cfg, out)
    if payload is not None and cfg.kind == "ctm":  # a resumed student keeps its width
        saved = payload["unet"]["dim"]
        if cfg.student_dim not in (None, saved):
            raise CTPError(f"--dim: {out / 'latest.pt'} holds a width-{saved} student, "
                           f"got {cfg.student_dim}")
        cfg.student_dim = saved
    parent_normalizer = _resolve_from_parent(cfg)
    if payload is not None:
        check_resume_config(payload["config"], cfg, out / "latest.pt")
    step = int(payload["step"]) if payload is not None else 0
    if info.main:
        prepare_out_dir(out, step)
    task = task_for_dataset(cfg.dataset_id)
    data = task.load(cfg.dataset_id)
    objective = OBJECTIVES[cfg.kind](cfg, device, int(data.observations.shape[1]))
    windows = objective.source(cfg, task, data, parent_normalizer)  # or transition pairs
    module = objective.module
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            capturable=cfg.cuda_graphs)
    if payload is not None:
        load_weights(module, payload["model"], f"{out / 'latest.pt'}: model")
        load_weights(objective.ema, payload["ema"], f"{out / 'latest.pt'}: ema")
        opt.load_state_dict(payload["optimizer"])
        for group in opt.param_groups:  # the options of this run, not the saved ones
            group["weight_decay"] = cfg.weight_decay
    scheduler = lr_scheduler(cfg, opt, payload)
    if info.world > 1:
        for p in module.parameters():
            dist.broadcast(p.data, 0)
        objective.ema.load_state_dict(module.state_dict())
    if cfg.compile:
        module.forward = torch.compile(module.forward)
    sampler = WindowSampler(len(windows), cfg.batch_size, cfg.seed + step, info)
    host_rng = random.Random(cfg.seed + step)
    if info.main:
        write_json(out / "config.json", cfg.to_dict())
    metrics = (out / "metrics.jsonl").open("a") if info.main else None

    stop: dict[str, int | None] = {"signal": None}
    previous_handlers = {sig: signal.signal(sig, lambda signum, _: stop.update(signal=signum))
                         for sig in STOP_SIGNALS}
    deadline = time.monotonic() + cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    recent: deque[float] = deque(maxlen=100)
    step_fn = _make_step(cfg, objective, opt, device)
    start_time, start_step = time.monotonic(), step

    def checkpoint(final: bool = False) -> None:
        if not info.main:
            return
        loss = float(np.mean(recent)) if recent else math.nan
        payload = _checkpoint_payload(cfg, objective, opt, scheduler, windows.normalizer, step,
                                      loss)
        save_checkpoint(out / "latest.pt", payload)
        if not final and math.isfinite(loss):
            save_checkpoint(out / f"step-{step:07d}-loss-{loss:.6f}.pt", payload)
            prune_checkpoints(out, cfg.keep_best)

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.kind}", unit="step",
               disable=not (cfg.progress and info.main), mininterval=1.0)
    try:
        while step < cfg.steps and stop["signal"] is None and time.monotonic() < deadline:
            batch = {k: v.to(device) for k, v in windows.batch(sampler.next()).items()}
            k = host_rng.randint(1, cfg.ctm.max_teacher_steps)
            loss, parts = step_fn(batch, k, info)
            lr = opt.param_groups[0]["lr"]  # this step's
            scheduler.step()
            ema_update(objective.ema, module, cfg.ema_decay)
            step += 1
            recent.append(float(loss))
            if step % cfg.log_every == 0 or step == cfg.steps:
                elapsed = time.monotonic() - start_time
                rate = (step - start_step) * cfg.batch_size * info.world / max(elapsed, 1e-9)
                row = {"step": step, "loss": float(np.mean(recent)), "lr": lr,
                       "windows_per_s": rate, "elapsed_s": elapsed,
                       **{k2: float(v) for k2, v in parts.items()}}
                if metrics:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                bar.set_postfix(loss=f"{row['loss']:.4f}", win_s=f"{rate:.0f}")
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                checkpoint()
    finally:
        bar.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        checkpoint(final=True)
        if metrics:
            metrics.close()
    return TrainResult(out / "latest.pt", step, module, stop["signal"])


def _make_step(cfg: TrainConfig, objective: Objective, opt, device):
    """The per-batch update: eager, or replayed from a CUDA graph per teacher-step count k."""
    module = objective.module

    def eager(batch, k, info):
        loss, parts = objective.loss(batch, k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if info.world > 1:
            _average_gradients(module, info)
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
        opt.step()
        return loss.detach(), parts

    if not cfg.cuda_graphs:
        return eager
    graphs: dict[int, tuple] = {}

    def graphed(batch, k, info):
        if info.world > 1:
            raise CTPError("--cuda-graphs: multi-process training runs eagerly; drop the flag")
        if k not in graphs:
            static = {name: t.clone() for name, t in batch.items()}
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up: allocator, autotuning, optimizer state
                    eager(static, k, info)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                static_loss, static_parts = objective.loss(static, k)
                static_loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
                opt.step()
            graphs[k] = (graph, static, static_loss, static_parts)
        graph, static, static_loss, static_parts = graphs[k]
        for name, t in batch.items():
            static[name].copy_(t)
        graph.replay()
        return static_loss.detach().clone(), {n: v.clone() for n, v in static_parts.items()}

    return graphed
