"""Fused GroupNorm -> Mish (+ per-channel embedding) over ``[B, C, L]`` activations.

(The Triton kernel and its autograd Function are added by the kernels issue; this file holds
the PyTorch reference and the public entry point.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ctp.kernels.backend import resolve_backend


def gn_mish_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    num_groups: int,
    eps: float = 1e-5,
    emb: torch.Tensor | None = None,
) -> torch.Tensor:
    """PyTorch reference: ``mish(group_norm(x)) (+ emb[:, :, None])``; x ``[B, C, L]``, emb ``[B, C]``."""
    y = F.mish(F.group_norm(x, num_groups, weight, bias, eps))
    return y if emb is None else y + emb[:, :, None]


def fused_gn_mish(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    num_groups: int,
    eps: float = 1e-5,
    emb: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """``mish(group_norm(x, num_groups, weight, bias, eps)) (+ emb[:, :, None])``.

    x: ``[B, C, L]``; weight, bias: ``[C]``; emb: ``[B, C]`` or None. Returns ``[B, C, L]``.
    """
    if resolve_backend(backend, x.device) == "triton":
        raise NotImplementedError("the Triton gn_mish kernel is not written yet")
    return gn_mish_reference(x, weight, bias, num_groups, eps, emb)
