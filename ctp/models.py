"""Build networks from configs, and rebuild them from checkpoints (EMA weights)."""

from __future__ import annotations

from typing import Any

from ctp.checkpoint import load_checkpoint
from ctp.ctm import CTMStudent
from ctp.data.normalizer import Normalizer
from ctp.edm import EDMConfig, EDMDenoiser
from ctp.nn import Critic, TemporalUNet, UNetConfig
from ctp.validation import load_weights


def unet_config(payload: dict[str, Any], **overrides: Any) -> UNetConfig:
    """The checkpoint's U-Net config (``overrides`` e.g. a kernel backend)."""
    cfg = dict(payload["unet"])
    cfg["dim_mults"] = tuple(cfg["dim_mults"])
    cfg.update(overrides)
    return UNetConfig(**cfg)


def build_teacher(unet: UNetConfig, edm: EDMConfig) -> EDMDenoiser:
    return EDMDenoiser(TemporalUNet(unet), edm)


def build_student(unet: UNetConfig, edm: EDMConfig) -> CTMStudent:
    unet.s_embedding = True
    return CTMStudent(TemporalUNet(unet), edm)


def load_model(path: str, kind: str | None = None, device: str = "cpu", backend: str = "auto"):
    """(model with EMA weights in eval mode, payload) from a teacher/ctm/critic checkpoint."""
    payload = load_checkpoint(path, kind)
    unet = unet_config(payload, backend=backend)
    edm = EDMConfig(**payload["edm"])
    builders = {
        "teacher": lambda: build_teacher(unet, edm),
        "ctm": lambda: build_student(unet, edm),
        "critic": lambda: Critic(unet),
    }
    model = builders[payload["kind"]]()
    part = "ema" if payload.get("ema") else "model"
    load_weights(model, payload[part], f"{path}: {part}")
    normalizer_of(payload, path)  # a NaN normaliser would spoil everything made from this
    return model.to(device).eval().requires_grad_(False), payload


def normalizer_of(payload: dict[str, Any], source: str = "") -> Normalizer:
    """The checkpoint's normaliser (checked finite; errors name ``source``)."""
    return Normalizer.from_state_dict(payload["normalizer"], source)
