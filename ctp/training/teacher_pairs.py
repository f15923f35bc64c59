"""Teacher ODE pairs: (noise, start, goal) -> the EDM teacher's Heun sample, for a student's
one-jump map to regress on.

A one-jump plan maps noise at sigma_max straight to a trajectory. CTM learns that map by
bootstrapping down its grid, and on the larger datasets the one-jump student stays
well behind its teacher (docs/results.md section 9). A pairs file holds,
for N conditions drawn from the teacher's own dataset, the unit noise z and the teacher's
deterministic Heun sample from sigma_max * z under that condition: the exact point the one
jump G(sigma_max z, sigma_max, 0) should land on (knowledge distillation of the sampler,
Luhman & Luhman 2021). ``ctp train ctm --pairs FILE`` adds that regression to the CTM loss.

Conditions: the start state of a dataset window, and as goal either the window's own end
(as in training) or, with probability ``far_goal_prob``, the end of another random window,
so that far goals, which planning meets all the time, are covered too.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctp.data.windows import TrajectoryWindows, WindowConfig
from ctp.models.builder import load_model, normalizer_of
from ctp.models.ctm import CTMStudent, one_jump_loss
from ctp.models.edm import EDMDenoiser, heun_sample
from ctp.tasks import task_for_dataset
from ctp.tasks.base import Task
from ctp.utils.checkpoint import load_checkpoint, save_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import (
    MAX_SEED,
    check_finite_state,
    check_options,
    check_output,
    int_option,
)

KIND = "pairs"


@dataclass
class PairsConfig:
    """What ``ctp pairs`` makes: ``count`` pairs from ``teacher`` in batches."""

    teacher: str
    out: str
    count: int = 32_768
    heun_steps: int = 18  # Karras levels of the teacher's sampler (NFE 2N - 1), as in planning
    far_goal_prob: float = 0.5
    batch_size: int = 256
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        check_options([
            int_option("--count", self.count),
            int_option("--heun-steps", self.heun_steps, 2),
            (0.0 <= self.far_goal_prob <= 1.0, "--far-goal-prob", "in [0, 1]",
             self.far_goal_prob),
            (self.batch_size >= 1, "--batch-size", ">= 1", self.batch_size),
            int_option("--seed", self.seed, 0, MAX_SEED),
        ])


def teacher_fingerprint(teacher: EDMDenoiser) -> str:
    """SHA-256 of the teacher's weights (float32 bytes in state-dict order), 16 hex digits."""
    digest = hashlib.sha256()
    for name, tensor in teacher.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def draw_conditions(
    windows: TrajectoryWindows, count: int, far_goal_prob: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(start ``[count, D]``, goal ``[count, D]``), normalised; the goal is the state a
    window's condition pins at its end (``Task.window_condition``), D the windows' width."""
    own = windows.batch(rng.integers(0, len(windows), count))
    other = windows.batch(rng.integers(0, len(windows), count))
    far = torch.from_numpy(rng.random(count) < far_goal_prob)[:, None]
    goal = torch.where(far, other["value"][:, -1], own["value"][:, -1])
    return own["value"][:, 0].clone(), goal


@torch.no_grad()
def teacher_targets(task: Task, teacher: EDMDenoiser, noise: torch.Tensor,
                    start: torch.Tensor, goal: torch.Tensor, heun_steps: int, batch_size: int,
                    progress: bool = False) -> torch.Tensor:
    """The teacher's Heun samples ``[N, H, D]`` from unit noise ``[N, H, D]`` (scaled by
    sigma_max) under the task's conditions of start and goal states ``[N, D]``
    (``Task.condition``), in batches of ``batch_size``."""
    from tqdm import tqdm

    count, horizon, _ = noise.shape
    target = torch.empty_like(noise)
    for lo in tqdm(range(0, count, batch_size), desc="teacher pairs", unit="batch",
                   disable=not progress):
        hi = min(lo + batch_size, count)
        mask, value = task.condition(start[lo:hi], goal[lo:hi], horizon)
        target[lo:hi] = heun_sample(teacher, noise[lo:hi] * teacher.cfg.sigma_max, mask,
                                    value, heun_steps, teacher.cfg)
    return target


def make_pairs(cfg: PairsConfig) -> Path:
    """Sample ``cfg.count`` teacher pairs and write them atomically to ``cfg.out``."""
    cfg.validate()
    check_output("--out", cfg.out, {"--teacher": cfg.teacher})
    teacher, payload = load_model(cfg.teacher, "teacher")
    horizon = payload["horizon"]
    task = task_for_dataset(payload["dataset_id"])
    normalizer = normalizer_of(payload, cfg.teacher)  # its width: the states the teacher plans
    windows = TrajectoryWindows(task, task.load(payload["dataset_id"]).leading_dims(
                                    normalizer.dim),
                                WindowConfig(horizon, payload["stride"]), normalizer)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    start, goal = draw_conditions(windows, cfg.count, cfg.far_goal_prob, rng)
    noise = torch.randn(cfg.count, horizon, start.shape[1], generator=generator)
    target = teacher_targets(task, teacher, noise, start, goal, cfg.heun_steps,
                             cfg.batch_size, cfg.progress)
    return save_checkpoint(cfg.out, {
        "kind": KIND, "config": asdict(cfg), "dataset_id": payload["dataset_id"],
        "horizon": horizon, "stride": payload["stride"],
        "teacher_fingerprint": teacher_fingerprint(teacher),
        "noise": noise, "start": start, "goal": goal, "target": target,
    })


def load_pairs(path: str, payload: dict[str, Any], teacher: EDMDenoiser | None = None
               ) -> dict[str, torch.Tensor]:
    """The pairs file's tensors (noise, start, goal, target), after checking that it fits the
    checkpoint ``payload`` (dataset, horizon, stride), that they are finite (NaN or inf: a
    CTPError naming the tensor) and, given ``teacher``, that it was made by this very teacher
    (weights fingerprint)."""
    pairs = load_checkpoint(path, KIND)
    for name in ("dataset_id", "horizon", "stride"):
        if pairs[name] != payload[name]:
            raise CTPError(f"{path}: {name} {pairs[name]!r}, but the checkpoint's is "
                           f"{payload[name]!r}")
    tensors = {k: pairs[k] for k in ("noise", "start", "goal", "target")}
    check_finite_state(tensors, path)
    if teacher is not None and pairs["teacher_fingerprint"] != teacher_fingerprint(teacher):
        raise CTPError(f"{path}: teacher_fingerprint {pairs['teacher_fingerprint']} does not "
                       "match the --teacher checkpoint's weights (made by another teacher)")
    return tensors


@torch.no_grad()
def jump_error(task: Task, student: CTMStudent, pairs: dict[str, torch.Tensor],
               batch_size: int = 256) -> float:
    """Mean squared distance (generated entries) between the student's one jump and the
    teacher's sample over every pair of ``pairs`` (``load_pairs``' tensors, N pairs): the
    training regression's error, measured on pairs it trained on or on fresh ones."""
    count, horizon, _ = pairs["noise"].shape
    total = 0.0
    for lo in range(0, count, batch_size):
        hi = min(lo + batch_size, count)
        mask, value = task.condition(pairs["start"][lo:hi], pairs["goal"][lo:hi], horizon)
        error = one_jump_loss(student, pairs["noise"][lo:hi], mask, value,
                              pairs["target"][lo:hi])
        total += float(error) * (hi - lo)
    mean = total / count
    if not np.isfinite(mean):
        raise CTPError(f"one-jump error is {mean}: the student or the pairs hold non-finite "
                       "values")
    return mean
