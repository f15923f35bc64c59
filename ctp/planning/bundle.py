"""Planner files: the CTM student, optionally the teacher and critic, and what planning needs.

A planner file is one ``torch.save`` dict (loadable with ``weights_only=True``) with
schema_version, kind "planner", task (the ``ctp.tasks`` name; files from before it was recorded
are read as ``ctp.tasks.DEFAULT_TASK``'s), dataset_id, horizon, stride, normaliser, EDM
constants, the dataset's reference scores, per network its U-Net config and EMA weights, the
planner defaults and the scorer weights (``scorers``). Fields: ``ctp.checkpoint.PlannerFile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctp.checkpoint import KINDS, PLANNER_NETWORKS, load_checkpoint, save_checkpoint
from ctp.errors import CTPError
from ctp.validation import check_not_input

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets"


def bundled_planner_path(env_name: str) -> Path:
    """Where the planner shipped for env ``env_name`` lives inside the package."""
    return BUNDLED_DIR / f"{env_name}.pt"


@dataclass
class ExportConfig:
    student: str
    out: str
    teacher: str | None = None
    critic: str | None = None
    half: bool = False  # store weights as float16 (half the size)
    defaults: dict[str, Any] | None = None  # PlannerConfig fields + "replan", chosen by eval
    scorers: dict[str, float] | None = None  # scorer weights over the task's defaults


def _network(payload: dict[str, Any], half: bool) -> dict[str, Any]:
    state = payload["ema"] or payload["model"]
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return {"unet": payload["unet"], "state": state, "step": payload["step"]}


def export_planner(cfg: ExportConfig) -> Path:
    """Bundle training checkpoints into one planner file (the dataset's ref scores too)."""
    from ctp.planning import scorers
    from ctp.planning.planner import PlannerConfig
    from ctp.tasks import planning_task, task_for_dataset

    check_not_input("--out", cfg.out, {"--student": cfg.student, "--teacher": cfg.teacher,
                                       "--critic": cfg.critic})
    defaults = dict(cfg.defaults or {})
    replan = defaults.pop("replan", None)
    if replan is not None and replan < 1:
        raise CTPError(f"--replan: expected >= 1 env steps, got {replan}")
    PlannerConfig(**defaults).validate()
    aliases = {flag: defaults.pop(flag, None) for flag in scorers.ALIASES}
    student = load_checkpoint(cfg.student, "ctm")
    teacher = load_checkpoint(cfg.teacher, "teacher") if cfg.teacher else None
    critic = load_checkpoint(cfg.critic, "critic") if cfg.critic else None
    for other, name in ((teacher, "--teacher"), (critic, "--critic")):
        if other is None:
            continue
        for key in ("dataset_id", "horizon", "stride"):
            if other[key] != student[key]:
                raise CTPError(
                    f"{name}: {key} {other[key]!r} differs from the student's {student[key]!r}"
                )
    task = planning_task(task_for_dataset(student["dataset_id"]))
    weights = scorers.resolve_weights(task, cfg.scorers, aliases, "--scorer")
    for name, weight in weights.items():  # a learned scorer needs its network in the file
        spec = scorers.LEARNED.get(name) if name not in task.scorers else None
        if weight and spec is not None and {"critic": critic}.get(spec.network) is None:
            raise CTPError(f"scorer {name!r} has weight {weight:g} but no {spec.network} is "
                           f"bundled: pass --{spec.network} or set its weight to 0")
    data = task.load(student["dataset_id"])  # checked, and its reference scores
    payload = {
        "kind": "planner",
        "task": task.name,
        "dataset_id": student["dataset_id"],
        "horizon": student["horizon"],
        "stride": student["stride"],
        "normalizer": student["normalizer"],
        "edm": student["edm"],
        "ctm": student["ctm"],
        "ref_min_score": data.ref_min_score,
        "ref_max_score": data.ref_max_score,
        "student": _network(student, cfg.half),
        "teacher": _network(teacher, cfg.half) if teacher else None,
        "critic": _network(critic, cfg.half) if critic else None,
        "defaults": {**defaults, **({"replan": replan} if replan is not None else {})},
        "scorers": weights,
    }
    return save_checkpoint(cfg.out, payload)


def load_planner_file(path: str | Path) -> dict[str, Any]:
    """A planner file's payload (checked: schema, kind); a training checkpoint is refused
    with the command that bundles it."""
    payload = load_checkpoint(path)
    kind = payload.get("kind")
    if kind in KINDS:
        raise CTPError(f"{path}: kind {kind!r}, expected 'planner': a training checkpoint; "
                       "bundle it first: ctp bundle --student CTM.pt [--teacher "
                       "TEACHER.pt] [--critic CRITIC.pt] --out PLANNER.pt")
    if kind != "planner":
        raise CTPError(f"{path}: kind {kind!r}, expected 'planner'")
    return payload


def unbundle_planner(path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Turn a planner file back into training checkpoints, to continue training it.

    Writes ``OUT/{teacher,ctm,critic}/latest.pt`` (for the networks the file holds) with the
    EMA weights as float32 model and EMA state, a fresh AdamW state and the file's step, so
    ``ctp train ctm --teacher OUT/teacher/latest.pt --out OUT/ctm --resume`` continues the
    student. Returns ``{kind: checkpoint path}``.
    """
    import torch

    from ctp.edm import EDMConfig
    from ctp.models import load_network, unet_config
    from ctp.train import TrainConfig

    planner = load_planner_file(path)
    edm = EDMConfig(**planner["edm"])
    written = {}
    for key, kind in PLANNER_NETWORKS.items():
        network = planner.get(key)
        if network is None:
            continue
        unet = unet_config(network)
        module = load_network(kind, network["unet"], network["state"], edm, f"{path}: {key}")
        state = module.state_dict()
        optimizer = torch.optim.AdamW(module.parameters())
        cfg = TrainConfig(kind=kind, dataset_id=planner["dataset_id"],
                          horizon=planner["horizon"], stride=planner["stride"], dim=unet.dim,
                          dim_mults=unet.dim_mults, out_dir=str(Path(out_dir) / kind))
        written[kind] = save_checkpoint(Path(out_dir) / kind / "latest.pt", {
            "kind": kind,
            "config": cfg.to_dict(),
            "unet": network["unet"],
            "edm": planner["edm"],
            "ctm": planner["ctm"],
            "model": state,
            "ema": state,
            "optimizer": optimizer.state_dict(),
            "normalizer": planner["normalizer"],
            "dataset_id": planner["dataset_id"],
            "horizon": planner["horizon"],
            "stride": planner["stride"],
            "step": network["step"],
            "loss": float("nan"),
        })
    return written
