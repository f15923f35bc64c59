"""Triton kernels for fused GroupNorm -> Mish (+ embedding): forward and backward.

One program per (batch, group); a group's Cg channels x L positions are contiguous in a
``[B, C, L]`` tensor and are walked as one flat range in tiles of BLOCK. Statistics are fp32
and two-pass (mean, then centred squares). Imported only when the Triton backend runs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _softplus_tanh(y):
    """tanh(softplus(y)) and its derivative factor sigmoid(y), both fp32."""
    sp = tl.where(y > 20.0, y, tl.log(1.0 + tl.exp(tl.minimum(y, 20.0))))
    e = tl.exp(-2.0 * sp)  # sp >= 0, so this is stable
    t = (1.0 - e) / (1.0 + e)
    sig = 1.0 / (1.0 + tl.exp(-y))
    return t, sig


@triton.jit
def _group_stats(X, base, n, eps, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n, BLOCK):
        idx = start + offs
        acc += tl.load(X + base + idx, mask=idx < n, other=0.0).to(tl.float32)
    mean = tl.sum(acc, axis=0) / n
    acc2 = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n, BLOCK):
        idx = start + offs
        m = idx < n
        d = tl.where(m, tl.load(X + base + idx, mask=m, other=0.0).to(tl.float32) - mean, 0.0)
        acc2 += d * d
    var = tl.sum(acc2, axis=0) / n
    return mean, 1.0 / tl.sqrt(var + eps)


@triton.jit
def _normed(X, W, Bias, base, idx, m, first_channel, L, mean, rstd):
    """x_hat, y = x_hat * w + b and w (fp32) at flat group offsets ``idx``."""
    c = first_channel + idx // L
    x = tl.load(X + base + idx, mask=m, other=0.0).to(tl.float32)
    w = tl.load(W + c, mask=m, other=0.0).to(tl.float32)
    bb = tl.load(Bias + c, mask=m, other=0.0).to(tl.float32)
    xhat = (x - mean) * rstd
    return xhat, xhat * w + bb, w


@triton.jit
def _gn_mish_fwd(X, W, Bias, Emb, Y, Mean, Rstd, C, L, G, eps,
                 HAS_EMB: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // G
    g = pid % G
    cg = C // G
    n = cg * L
    base = b * C * L + g * cg * L
    mean, rstd = _group_stats(X, base, n, eps, BLOCK)
    offs = tl.arange(0, BLOCK)
    for start in range(0, n, BLOCK):
        idx = start + offs
        m = idx < n
        _, y, _ = _normed(X, W, Bias, base, idx, m, g * cg, L, mean, rstd)
        t, _ = _softplus_tanh(y)
        out = y * t
        if HAS_EMB:
            c = g * cg + idx // L
            out += tl.load(Emb + b * C + c, mask=m, other=0.0).to(tl.float32)
        tl.store(Y + base + idx, out.to(Y.dtype.element_ty), mask=m)
    tl.store(Mean + pid, mean)
    tl.store(Rstd + pid, rstd)


@triton.jit
def _gn_mish_bwd(X, W, Bias, DY, Mean, Rstd, DX, Gout, GXout, C, L, G,
                 BLOCK: tl.constexpr):
    """dx for one (batch, group); also writes g = dy * mish'(y) and g * xhat (fp32) for the
    weight/bias gradients, which the wrapper reduces over batch and positions."""
    pid = tl.program_id(0)
    b = pid // G
    gi = pid % G
    cg = C // G
    n = cg * L
    base = b * C * L + gi * cg * L
    mean = tl.load(Mean + pid)
    rstd = tl.load(Rstd + pid)
    offs = tl.arange(0, BLOCK)
    s1 = tl.zeros([BLOCK], dtype=tl.float32)
    s2 = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n, BLOCK):
        idx = start + offs
        m = idx < n
        xhat, y, w = _normed(X, W, Bias, base, idx, m, gi * cg, L, mean, rstd)
        dy = tl.load(DY + base + idx, mask=m, other=0.0).to(tl.float32)
        t, sig = _softplus_tanh(y)
        g = dy * (t + y * (1.0 - t * t) * sig)
        g = tl.where(m, g, 0.0)
        tl.store(Gout + base + idx, g, mask=m)
        tl.store(GXout + base + idx, g * xhat, mask=m)
        dxhat = g * w
        s1 += dxhat
        s2 += dxhat * xhat
    m1 = tl.sum(s1, axis=0) / n
    m2 = tl.sum(s2, axis=0) / n
    for start in range(0, n, BLOCK):
        idx = start + offs
        m = idx < n
        xhat, _, w = _normed(X, W, Bias, base, idx, m, gi * cg, L, mean, rstd)
        g = tl.load(Gout + base + idx, mask=m, other=0.0)
        dx = rstd * (g * w - m1 - xhat * m2)
        tl.store(DX + base + idx, dx.to(DX.dtype.element_ty), mask=m)


def _block(n: int) -> int:
    return max(16, min(1024, triton.next_power_of_2(n)))


def gn_mish_forward(x, weight, bias, num_groups, eps, emb):
    """Launch the forward kernel: returns (y ``[B, C, L]``, mean ``[B*G]``, rstd ``[B*G]``)."""
    bsz, c, length = x.shape
    y = torch.empty_like(x)
    mean = torch.empty(bsz * num_groups, device=x.device, dtype=torch.float32)
    rstd = torch.empty_like(mean)
    n = (c // num_groups) * length
    _gn_mish_fwd[(bsz * num_groups,)](
        x, weight, bias, emb if emb is not None else x, y, mean, rstd, c, length, num_groups,
        eps, HAS_EMB=emb is not None, BLOCK=_block(n),
    )
    return y, mean, rstd


def gn_mish_backward(x, weight, bias, num_groups, mean, rstd, dy):
    """Launch the backward kernel: returns (dx, g, g * xhat), the last two fp32 ``[B, C, L]``."""
    bsz, c, length = x.shape
    dx = torch.empty_like(x)
    g = torch.empty(x.shape, device=x.device, dtype=torch.float32)
    gx = torch.empty_like(g)
    n = (c // num_groups) * length
    _gn_mish_bwd[(bsz * num_groups,)](
        x, weight, bias, dy, mean, rstd, dx, g, gx, c, length, num_groups, BLOCK=_block(n),
    )
    return dx, g, gx
