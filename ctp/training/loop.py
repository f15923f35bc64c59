"""Training loops for the EDM teacher, the CTM student, the critic, the value network, the
inverse-dynamics model and the goal distance.

One loop serves all of them: an objective gives the trainable module, its EMA copy, its data
(dataset windows; for invdyn transition pairs, for distance pairs of places) and a loss per
batch; the loop adds AdamW, gradient clipping, EMA, data parallelism across processes, tqdm
progress, a JSONL metrics file, a time budget, atomic checkpoints and resume.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ctp.data.normalizer import Normalizer
from ctp.tasks import task_for_dataset
from ctp.tasks.base import StepStream, Task
from ctp.training.config import TrainConfig, _resolve_from_parent, validate
from ctp.training.distributed import WindowSampler, _average_gradients, init_distributed
from ctp.training.objectives import OBJECTIVES, Objective
from ctp.training.resume import _resume_payload, check_resume_config, prepare_out_dir
from ctp.training.schedules import ema_update, lr_scheduler
from ctp.utils.atomic import WriteFailed, write_json
from ctp.utils.checkpoint import prune_checkpoints, save_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import load_weights, nonfinite_tensor, resolve_device

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # save a checkpoint, then stop


class TrainingDiverged(CTPError):
    """A non-finite loss or weights: the run stops and saves nothing over its last finite
    checkpoint."""


def _diverged(kind: str, step: int, what: str, latest: Path,
              saved_step: int | None) -> TrainingDiverged:
    """The error of a run that diverged at ``step``, naming the checkpoint kept on disk."""
    kept = (f"the last finite checkpoint, {latest} (step {saved_step}), is kept"
            if saved_step is not None else "no checkpoint was written")
    return TrainingDiverged(f"train {kind}: {what} at step {step}: training diverged (try a "
                            f"lower --lr); {kept}")


def _write_failed(kind: str, step: int, exc: WriteFailed, latest: Path,
                  saved_step: int | None) -> WriteFailed:
    """A save or metrics row that failed at ``step`` (a full disk), naming the checkpoint kept
    on disk."""
    kept = (f"the last checkpoint, {latest} (step {saved_step}), is kept"
            if saved_step is not None else "no checkpoint was written")
    return exc.keeping(kept, f"train {kind}: at step {step}, ")


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


def planned_part(cfg: TrainConfig, task: Task, data: StepStream,
                 parent_normalizer: Normalizer | None) -> StepStream:
    """The part of the data a run's networks plan: the states' leading ``--plan-dims`` (a
    teacher or value run), the width of the parent's normaliser (ctm, critic), or all of them
    (0; inverse dynamics and the goal distance always read whole states)."""
    width = data.observations.shape[1]
    if cfg.kind in ("invdyn", "distance"):
        return data
    planned = parent_normalizer.dim if parent_normalizer is not None else cfg.plan_dims
    if planned in (0, width):
        return data
    if not task.min_state_dim <= planned < width:
        raise CTPError(f"--plan-dims: {cfg.dataset_id} has {width}-dim states and its task "
                       f"plans at least {task.min_state_dim}; expected 0 (all) or "
                       f"{task.min_state_dim}..{width}, got {planned}")
    return data.leading_dims(planned)


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
    data = planned_part(cfg, task, task.load(cfg.dataset_id), parent_normalizer)
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
    saved: dict[str, int | None] = {"step": step if payload is not None else None}

    def checkpoint(final: bool = False) -> None:
        if not info.main:
            return
        loss = float(np.mean(recent)) if recent else math.nan
        payload = _checkpoint_payload(cfg, objective, opt, scheduler, windows.normalizer, step,
                                      loss)
        for part in ("model", "ema"):  # never a NaN checkpoint over a finite one
            name = nonfinite_tensor(payload[part])
            if name is not None:
                raise _diverged(cfg.kind, step, f"{part} tensor {name!r} holds NaN or inf",
                                out / "latest.pt", saved["step"])
        try:
            save_checkpoint(out / "latest.pt", payload)
            saved["step"] = step
            if not final and math.isfinite(loss):
                save_checkpoint(out / f"step-{step:07d}-loss-{loss:.6f}.pt", payload)
                prune_checkpoints(out, cfg.keep_best)
        except WriteFailed as exc:
            raise _write_failed(cfg.kind, step, exc, out / "latest.pt", saved["step"]) from None

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.kind}", unit="step",
               disable=not (cfg.progress and info.main), mininterval=1.0)
    failed = False  # diverged, or the disk is full: nothing more is saved
    try:
        while step < cfg.steps and stop["signal"] is None and time.monotonic() < deadline:
            batch = {k: v.to(device) for k, v in windows.batch(sampler.next()).items()}
            k = host_rng.randint(1, cfg.ctm.max_teacher_steps)
            loss, parts = step_fn(batch, k, info)
            lr = opt.param_groups[0]["lr"]  # this step's
            scheduler.step()
            ema_update(objective.ema, module, cfg.ema_decay)
            step += 1
            recent.append(float(loss))  # the step's one host sync, also the divergence check
            if not math.isfinite(recent[-1]):
                raise _diverged(cfg.kind, step, f"the loss is {recent[-1]}", out / "latest.pt",
                                saved["step"])
            if step % cfg.log_every == 0 or step == cfg.steps:
                elapsed = time.monotonic() - start_time
                rate = (step - start_step) * cfg.batch_size * info.world / max(elapsed, 1e-9)
                row = {"step": step, "loss": float(np.mean(recent)), "lr": lr,
                       "windows_per_s": rate, "elapsed_s": elapsed,
                       **{k2: float(v) for k2, v in parts.items()}}
                if metrics:
                    try:
                        metrics.write(json.dumps(row) + "\n")
                        metrics.flush()
                    except OSError as exc:  # a torn last row is dropped on resume
                        raise _write_failed(cfg.kind, step, WriteFailed(metrics.name, exc),
                                            out / "latest.pt", saved["step"]) from None
                bar.set_postfix(loss=f"{row['loss']:.4f}", win_s=f"{rate:.0f}")
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                checkpoint()
    except (TrainingDiverged, WriteFailed):
        failed = True
        raise
    finally:
        bar.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if metrics:
            with contextlib.suppress(OSError):  # rows are flushed as written; after a failed
                metrics.close()  # one, closing would fail on the same buffered bytes
        if not failed:
            checkpoint(final=True)
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
