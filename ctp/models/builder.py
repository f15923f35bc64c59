"""Build networks from configs (:func:`build_network`, one place for every kind), and rebuild
them from checkpoint and planner-file entries (:func:`load_network`, :func:`load_model`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ctp.data.normalizer import Normalizer
from ctp.models.ctm import CTMStudent
from ctp.models.distance import GoalDistance
from ctp.models.edm import EDMConfig, EDMDenoiser
from ctp.models.inverse_dynamics import InverseDynamics
from ctp.models.value import ValueNet
from ctp.nn import Critic, TemporalUNet, UNetConfig
from ctp.utils.checkpoint import NETWORK_KINDS, load_checkpoint
from ctp.utils.errors import CTPError
from ctp.utils.validation import load_weights


def unet_config(payload: dict[str, Any], **overrides: Any) -> UNetConfig:
    """The checkpoint's U-Net config (``overrides`` e.g. a kernel backend)."""
    cfg = dict(payload["unet"])
    cfg["dim_mults"] = tuple(cfg["dim_mults"])
    cfg.update(overrides)
    return UNetConfig(**cfg)


def build_network(kind: str, unet: UNetConfig, edm: EDMConfig | None) -> nn.Module:
    """A fresh network of ``kind`` (``ctp.utils.checkpoint.NETWORK_KINDS``): the EDM teacher, the
    CTM student (its U-Net also embeds the target time s), the critic or the value network.
    Every U-Net read from a checkpoint or planner file is built here (the two MLPs, the
    inverse dynamics and the goal distance, by :func:`build_invdyn` / :func:`build_distance`)."""
    if kind == "teacher":
        return EDMDenoiser(TemporalUNet(unet), edm)
    if kind == "ctm":
        return CTMStudent(TemporalUNet(replace(unet, s_embedding=True)), edm)
    if kind == "critic":
        return Critic(unet)
    if kind == "value":
        return ValueNet(unet)
    raise CTPError(f"unknown network kind {kind!r}: expected one of {', '.join(NETWORK_KINDS)}")


def load_network(kind: str, unet: dict[str, Any], state: Mapping[str, Any], edm: EDMConfig | None,
                 where: str, backend: str = "auto") -> nn.Module:
    """The ``kind`` network of a payload entry: its U-Net config ``unet`` and weights
    ``state`` (float16 weights are widened to float32); errors name ``where``."""
    try:
        cfg = unet_config({"unet": unet}, backend=backend)
    except (TypeError, ValueError, KeyError) as exc:
        raise CTPError(f"{where}: unet config is not valid ({exc})") from None
    model = build_network(kind, cfg, edm)
    load_weights(model, _widened(state), where)
    return model


def build_invdyn(config: Mapping[str, Any]) -> nn.Module:
    """A fresh inverse-dynamics MLP (``ctp.models.inverse_dynamics.InverseDynamics``) from its
    recorded config {obs_dim, act_dim, hidden, stride, target_dims, reach} (files before
    ``target_dims`` read every dim, unclipped)."""
    reach = config.get("reach")
    return InverseDynamics(int(config["obs_dim"]), int(config["act_dim"]),
                           tuple(int(h) for h in config["hidden"]), int(config["stride"]),
                           int(config.get("target_dims", 0)),
                           None if reach is None else float(reach))


def build_distance(config: Mapping[str, Any]) -> nn.Module:
    """A fresh goal distance MLP (``ctp.models.distance.GoalDistance``) from its recorded
    config {goal_dims, hidden, expectile, scale}."""
    return GoalDistance(int(config["goal_dims"]), tuple(int(h) for h in config["hidden"]),
                        float(config["expectile"]), float(config["scale"]))


def load_mlp_network(kind: str, config: Any, state: Mapping[str, Any], where: str) -> nn.Module:
    """The ``kind`` MLP (invdyn or distance) of a checkpoint or planner-file entry: its config
    and weights (float16 weights widened to float32); errors name ``where``."""
    build = {"invdyn": build_invdyn, "distance": build_distance}[kind]
    try:
        model = build(config)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CTPError(f"{where}: {kind} config is not valid ({exc!r})") from None
    load_weights(model, _widened(state), where)
    return model


def _widened(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in state.items()}


def build_teacher(unet: UNetConfig, edm: EDMConfig) -> EDMDenoiser:
    return build_network("teacher", unet, edm)


def build_student(unet: UNetConfig, edm: EDMConfig) -> CTMStudent:
    return build_network("ctm", unet, edm)


def load_model(path: str, kind: str | None = None, device: str = "cpu", backend: str = "auto"):
    """(model with EMA weights in eval mode, payload) from a U-Net checkpoint (teacher, ctm,
    critic or value; ``NETWORK_KINDS``)."""
    payload = load_checkpoint(path, kind or NETWORK_KINDS)
    part = "ema" if payload.get("ema") else "model"
    model = load_network(payload["kind"], payload["unet"], payload[part],
                         EDMConfig(**payload["edm"]), f"{path}: {part}", backend)
    normalizer_of(payload, path)  # a NaN normaliser would spoil everything made from this
    return model.to(device).eval().requires_grad_(False), payload


def normalizer_of(payload: dict[str, Any], source: str = "") -> Normalizer:
    """The checkpoint's normaliser (checked finite; errors name ``source``)."""
    return Normalizer.from_state_dict(payload["normalizer"], source)


def load_value(path: str | Path, device: str = "cpu", backend: str = "auto"
               ) -> tuple[ValueNet, Normalizer, dict[str, Any]]:
    """(frozen value network with EMA weights in eval mode, its normaliser, the payload) from
    a ``kind`` "value" checkpoint. Windows must be normalised with that normaliser (for the
    same dataset it equals the teacher's: both are fitted to its states)."""
    payload = load_checkpoint(path, "value")
    part = "ema" if payload.get("ema") else "model"
    net = load_network("value", payload["unet"], payload[part], None, f"{path}: {part}", backend)
    normalizer = normalizer_of(payload, str(path))
    return net.to(device).eval().requires_grad_(False), normalizer, payload


def load_invdyn(path: str | Path, device: str = "cpu"
                ) -> tuple[InverseDynamics, Normalizer, dict[str, Any]]:
    """(frozen inverse-dynamics model with EMA weights in eval mode, the dataset's
    normaliser, the payload) from a ``kind`` "invdyn" checkpoint. The model takes raw states;
    its ``stride`` is the k it was trained for (plan states k env steps apart)."""
    payload = load_checkpoint(path, "invdyn")
    part = "ema" if payload.get("ema") else "model"
    model = load_mlp_network("invdyn", payload["invdyn"], payload[part], f"{path}: {part}")
    normalizer = normalizer_of(payload, str(path))
    return model.to(device).eval().requires_grad_(False), normalizer, payload
