"""Planner files: the CTM student, optionally the teacher, critic, value network, inverse
dynamics and goal distance, and what planning needs.

A planner file is one ``torch.save`` dict (loadable with ``weights_only=True``) with
schema_version, kind "planner", task (the ``ctp.tasks`` name; files from before it was recorded
are read as ``ctp.tasks.DEFAULT_TASK``'s), dataset_id, horizon, stride, normaliser, EDM
constants, the dataset's reference scores, per network its config (a U-Net's, or the
inverse-dynamics or goal distance MLP's) and EMA weights, the planner defaults and the scorer
weights (``scorers``).
Fields: ``ctp.utils.checkpoint.PlannerFile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctp.utils.checkpoint import (
    FULL_PRECISION,
    KINDS,
    MLP_NETWORKS,
    PLANNER_NETWORKS,
    load_checkpoint,
    save_checkpoint,
)
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_finite_state, check_no_run, check_output

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
    value: str | None = None  # value checkpoint (ctp train value): the "value" scorer's network
    invdyn: str | None = None  # inverse-dynamics checkpoint (ctp train invdyn): the locomotion
    # controller's network
    distance: str | None = None  # goal distance checkpoint (ctp train distance): the
    # "distance" scorer's network


def _state(payload: dict[str, Any], half: bool) -> dict[str, Any]:
    """The checkpoint's EMA weights; float16 with ``half``, but statistics (FULL_PRECISION)."""
    state = payload["ema"] or payload["model"]
    if half:
        state = {k: v.half() if v.is_floating_point()
                 and k.rsplit(".", 1)[-1] not in FULL_PRECISION else v
                 for k, v in state.items()}
    return state


def _check_finite(payload: dict[str, Any], path: str) -> None:
    """Refuse a checkpoint whose bundled weights (EMA, else model) hold NaN or inf."""
    part = "ema" if payload["ema"] else "model"
    check_finite_state(payload[part], f"{path}: {part}")


def _network(payload: dict[str, Any], half: bool) -> dict[str, Any]:
    return {"unet": payload["unet"], "state": _state(payload, half), "step": payload["step"]}


def _teacher_entry(payload: dict[str, Any], half: bool) -> dict[str, Any]:
    """The teacher's network and the window option its students inherit
    (``hindsight_goals``), so a student distilled from an unbundled teacher trains on the
    same windows."""
    return {**_network(payload, half),
            "hindsight_goals": float(payload["config"].get("hindsight_goals", 0.0))}


def _value_entry(payload: dict[str, Any], half: bool) -> dict[str, Any]:
    return {**_network(payload, half), "returns": dict(payload.get("returns") or {})}


def _mlp_entry(kind: str, payload: dict[str, Any], half: bool) -> dict[str, Any]:
    """An MLP network's entry (invdyn, distance): its config under ``kind``, weights, step."""
    return {kind: dict(payload[kind]), "state": _state(payload, half), "step": payload["step"]}


def _check_against_student(student: dict[str, Any], others: dict[str, Any | None]) -> None:
    """Refuse a teacher / critic / value / invdyn / distance checkpoint made for another
    dataset, plan shape or (U-Nets only: the MLPs read raw states) normaliser than the
    student's, naming the option and the field."""
    import numpy as np

    from ctp.data.normalizer import Normalizer

    obs_dim = int(student["unet"]["obs_dim"])
    for name, other in others.items():
        if other is None:
            continue
        # the MLPs read single states: their horizon is unused; invdyn's k must reach a plan
        # state, the distance's positions must be the task's goal dims
        keys = (("dataset_id",) if name in ("--invdyn", "--distance")
                else ("dataset_id", "horizon", "stride"))
        for key in keys:
            if other[key] != student[key]:
                raise CTPError(f"{name}: {key} {other[key]!r} differs from the student's "
                               f"{student[key]!r}")
        if name == "--distance":
            continue  # its goal dims are checked against the task in export_planner
        if name == "--invdyn":
            from ctp.models.inverse_dynamics import check_reach, check_width

            target_dims = int(other["invdyn"].get("target_dims", 0))
            try:
                check_reach(other["invdyn"]["stride"], student["stride"], student["horizon"],
                            target_dims)
                check_width(int(other["invdyn"]["obs_dim"]), target_dims, obs_dim)
            except CTPError as exc:
                raise CTPError(f"{name}: {exc}") from None
            continue
        if int(other["unet"]["obs_dim"]) != obs_dim:
            raise CTPError(f"{name}: reads {other['unet']['obs_dim']}-dim states, the student "
                           f"plans {obs_dim}-dim states")
        mine = Normalizer.from_state_dict(student["normalizer"], "--student")
        theirs = Normalizer.from_state_dict(other["normalizer"], name)
        if not (np.allclose(mine.low, theirs.low, rtol=1e-5, atol=1e-6)
                and np.allclose(mine.high, theirs.high, rtol=1e-5, atol=1e-6)):
            raise CTPError(f"{name}: its normaliser differs from the student's (trained on "
                           "other data); retrain it on the student's dataset")


def export_planner(cfg: ExportConfig) -> Path:
    """Bundle training checkpoints into one planner file (the dataset's ref scores too)."""
    from ctp.planning import scorers
    from ctp.planning.config import PlannerConfig
    from ctp.tasks import planning_task, task_for_dataset

    check_output("--out", cfg.out, {"--student": cfg.student, "--teacher": cfg.teacher,
                                    "--critic": cfg.critic, "--value": cfg.value,
                                    "--invdyn": cfg.invdyn, "--distance": cfg.distance})
    defaults = dict(cfg.defaults or {})
    replan = defaults.pop("replan", None)
    if replan is not None and replan < 1:
        raise CTPError(f"--replan: expected >= 1 env steps, got {replan}")
    PlannerConfig(**defaults).validate()
    aliases = {flag: defaults.pop(flag, None) for flag in scorers.ALIASES}
    student = load_checkpoint(cfg.student, "ctm")
    teacher = load_checkpoint(cfg.teacher, "teacher") if cfg.teacher else None
    critic = load_checkpoint(cfg.critic, "critic") if cfg.critic else None
    value = load_checkpoint(cfg.value, "value") if cfg.value else None
    invdyn = load_checkpoint(cfg.invdyn, "invdyn") if cfg.invdyn else None
    distance = load_checkpoint(cfg.distance, "distance") if cfg.distance else None
    for path, payload in ((cfg.student, student), (cfg.teacher, teacher),
                          (cfg.critic, critic), (cfg.value, value), (cfg.invdyn, invdyn),
                          (cfg.distance, distance)):
        if payload is not None:
            _check_finite(payload, path)
    _check_against_student(student, {"--teacher": teacher, "--critic": critic,
                                     "--value": value, "--invdyn": invdyn,
                                     "--distance": distance})
    if defaults.get("aim") is not None:
        from ctp.models.inverse_dynamics import check_aim

        check_aim(defaults["aim"], student["stride"], student["horizon"],
                  int(invdyn["invdyn"].get("target_dims", 0)) if invdyn else None)
    task = planning_task(task_for_dataset(student["dataset_id"]))
    if replan is None:  # the task's usual replanning (locomotion: every env step)
        replan = task.default_replan
    if distance is not None and int(distance["distance"]["goal_dims"]) != task.goal_dims:
        raise CTPError(f"--distance: reads {distance['distance']['goal_dims']}-dim positions, "
                       f"the {task.name} task's goals are {task.goal_dims}-dim")
    if defaults.get("target_radius") is not None:  # the planner's own check, before writing
        target_dims = int(invdyn["invdyn"].get("target_dims", 0)) if invdyn else 0
        if distance is None or target_dims != task.goal_dims or task.goal_dims == 0:
            raise CTPError("--target-radius: needs a goal task, --distance and --invdyn "
                           f"reading positions (--target-dims {task.goal_dims or 'G'})")
    weights = scorers.resolve_weights(task, cfg.scorers, aliases, "--scorer")
    bundled = {"critic": critic, "value": value, "distance": distance}
    for name, weight in weights.items():  # a learned scorer needs its network in the file
        spec = scorers.LEARNED.get(name) if name not in task.scorers else None
        if weight and spec is not None and bundled.get(spec.network) is None:
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
        "teacher": _teacher_entry(teacher, cfg.half) if teacher else None,
        "critic": _network(critic, cfg.half) if critic else None,
        "value": _value_entry(value, cfg.half) if value else None,
        "invdyn": _mlp_entry("invdyn", invdyn, cfg.half) if invdyn else None,
        "distance": _mlp_entry("distance", distance, cfg.half) if distance else None,
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
                       "TEACHER.pt] [--critic CRITIC.pt] [--value VALUE.pt] [--invdyn "
                       "INVDYN.pt] [--distance DISTANCE.pt] --out PLANNER.pt")
    if kind != "planner":
        raise CTPError(f"{path}: kind {kind!r}, expected 'planner'")
    return payload


def unbundle_planner(path: str | Path, out_dir: str | Path,
                     kinds: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Turn a planner file back into training checkpoints, to continue training it.

    Writes ``OUT/{teacher,ctm,critic,value,invdyn,distance}/latest.pt`` (for the networks the
    file holds, or only ``kinds`` of them) with the EMA weights as float32 model and EMA state,
    a fresh AdamW state and the file's step (a teacher with the ``hindsight_goals`` its
    students inherit), so ``ctp train ctm --teacher
    OUT/teacher/latest.pt --out OUT/ctm --resume`` continues the student. Returns
    ``{kind: checkpoint path}``.
    """
    import torch

    from ctp.models.builder import load_mlp_network, load_network, unet_config
    from ctp.models.edm import EDMConfig
    from ctp.training.config import TrainConfig

    planner = load_planner_file(path)
    for key, kind in PLANNER_NETWORKS.items():  # all checked before the first file is written
        if planner.get(key) is not None and (kinds is None or kind in kinds):
            check_finite_state(planner[key]["state"], f"{path}: {key}")
            check_output("--out", Path(out_dir) / kind, folder=True)
            check_no_run("--out", Path(out_dir) / kind)
    edm = EDMConfig(**planner["edm"])
    written = {}
    for key, kind in PLANNER_NETWORKS.items():
        network = planner.get(key)
        if network is None or (kinds is not None and kind not in kinds):
            continue
        common = dict(kind=kind, dataset_id=planner["dataset_id"], horizon=planner["horizon"],
                      out_dir=str(Path(out_dir) / kind))
        extra: dict[str, Any] = {}
        if kind in MLP_NETWORKS:
            module = load_mlp_network(kind, network.get(kind), network["state"],
                                      f"{path}: {key}")
            own = ({"stride": module.stride} if kind == "invdyn"
                   else {"expectile": module.expectile})
            cfg = TrainConfig(**common, hidden=module.hidden, **own)
            extra = {"unet": None, "edm": None, kind: module.config()}
        else:
            unet = unet_config(network)
            module = load_network(kind, network["unet"], network["state"], edm,
                                  f"{path}: {key}")
            returns = network.get("returns") or {}
            cfg = TrainConfig(**common, stride=planner["stride"], dim=unet.dim,
                              dim_mults=unet.dim_mults,
                              hindsight_goals=float(network.get("hindsight_goals", 0.0)),
                              **({"gamma": returns["gamma"]} if "gamma" in returns else {}))
            extra = {"unet": network["unet"], "edm": planner["edm"]}
            if kind == "value":
                extra.update(edm=None, returns=dict(returns))
        state = module.state_dict()
        optimizer = torch.optim.AdamW(module.parameters())
        written[kind] = save_checkpoint(Path(out_dir) / kind / "latest.pt", {
            "kind": kind,
            "config": cfg.to_dict(),
            **extra,
            "ctm": planner["ctm"],
            "model": state,
            "ema": state,
            "optimizer": optimizer.state_dict(),
            "normalizer": planner["normalizer"],
            "dataset_id": planner["dataset_id"],
            "horizon": planner["horizon"],
            "stride": cfg.stride,
            "step": network["step"],
            "loss": float("nan"),
        })
    return written
