"""Data parallelism across processes (torchrun): the process group, disjoint window batches
per rank, gradient averaging."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


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


def _average_gradients(module: nn.Module, info: DistInfo) -> None:
    """All-reduce and average gradients across ranks (what DDP's reducer does)."""
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= info.world
