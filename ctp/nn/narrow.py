"""A narrower U-Net warm-started from a wider one by keeping a subset of its channels.

The narrow network has base width ``dim`` < the wide one's and the wide one's time-embedding
width. Every feature map of C channels keeps, in each of the G GroupNorm groups, the first
C' / G of the group's C / G channels (C' = C * dim / wide dim), so each GroupNorm group
still normalises channels of one group. The up path's first block reads the concatenation
[h, skip] (C + C channels): its input keeps each half's channels.
"""

from __future__ import annotations

import copy
import re

import torch

from ctp.nn.unet import TemporalUNet

_CONCAT_INPUT = re.compile(r"^ups\.\d+\.0\.(block1\.conv|residual)\.weight$")


def group_channels(wide: int, narrow: int, groups: int) -> torch.Tensor:
    """Indices ``[narrow]`` into ``wide`` channels: the first narrow/groups of each group."""
    if wide % groups or narrow % groups or narrow > wide:
        raise ValueError(f"cannot narrow {wide} channels to {narrow} in {groups} groups")
    step, keep = wide // groups, narrow // groups
    return (torch.arange(groups)[:, None] * step + torch.arange(keep)[None, :]).reshape(-1)


def _kept(name: str, dim: int, wide: int, narrow: int, groups: int) -> torch.Tensor:
    if dim == 1 and _CONCAT_INPUT.match(name):
        half = group_channels(wide // 2, narrow // 2, groups)
        return torch.cat([half, half + wide // 2])
    return group_channels(wide, narrow, groups)


def narrowed_unet(wide: TemporalUNet, dim: int) -> TemporalUNet:
    """A ``TemporalUNet`` of base width ``dim`` holding ``wide``'s kept channels.

    Layers the wide network lacks (e.g. a student's s embedding) keep their fresh init.
    """
    groups = wide.final_block.norm.num_groups  # every ConvGNMish has the same
    if dim % groups or not groups <= dim <= wide.cfg.dim:
        raise ValueError(
            f"dim: expected a multiple of {groups} in [{groups}, {wide.cfg.dim}], got {dim}"
        )
    cfg = copy.deepcopy(wide.cfg)
    cfg.embed_dim = wide.cfg.embed_dim or wide.cfg.dim
    cfg.dim = dim
    narrow = TemporalUNet(cfg).to(next(wide.parameters()).device)
    source = wide.state_dict()
    state = narrow.state_dict()
    for name, target in state.items():
        if name not in source:
            continue
        value = source[name]
        for axis, (w, n) in enumerate(zip(value.shape, target.shape, strict=True)):
            if w != n:
                kept = _kept(name, axis, w, n, groups)
                value = value.index_select(axis, kept.to(value.device))
        state[name] = value.clone()
    narrow.load_state_dict(state)
    return narrow
