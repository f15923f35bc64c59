"""Triton kernels and their PyTorch references, installed as ``ctp.kernels``.

Every kernel takes ``backend``: "triton" runs the Triton kernel (CUDA tensors, or CPU tensors
under ``TRITON_INTERPRET=1``), "torch" the PyTorch reference, "auto" Triton on CUDA and the
reference elsewhere.
"""

from ctp.kernels.backend import active_backend, resolve_backend, triton_available
from ctp.kernels.gn_mish import fused_gn_mish, gn_mish_reference, mish_exp
from ctp.kernels.scoring import (
    dynamics_error,
    dynamics_error_reference,
    goal_reward,
    goal_reward_reference,
    score_candidates,
    score_candidates_reference,
)

__all__ = [
    "active_backend",
    "dynamics_error",
    "dynamics_error_reference",
    "fused_gn_mish",
    "gn_mish_reference",
    "goal_reward",
    "goal_reward_reference",
    "mish_exp",
    "resolve_backend",
    "score_candidates",
    "score_candidates_reference",
    "triton_available",
]
