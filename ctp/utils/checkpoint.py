"""Checkpoints: atomic writes, a schema version, and loading that can never run code.

Every file ctp writes (training checkpoints, planner files, teacher pairs, behaviour actors) is
one ``torch.save`` dict of tensors and plain Python values (loadable with
``torch.load(weights_only=True)``) carrying ``schema_version`` and ``kind``. The fields of the
network files are described once, below: :class:`TrainingCheckpoint`, :class:`PlannerFile` and
the :class:`NetworkEntry` of each network a planner file holds. Networks are rebuilt from them
by ``ctp.models.builder.build_network`` / ``load_network``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import torch

from ctp.utils.atomic import atomic_write
from ctp.utils.errors import CTPError

SCHEMA_VERSION = 1  # every field added since is optional, so version-1 readers need no bump
KINDS = ("teacher", "ctm", "critic", "value", "invdyn", "distance")  # training checkpoints
# What ctp.models.builder.build_network builds.
NETWORK_KINDS = ("teacher", "ctm", "critic", "value")
# A planner file's network entries and the network kind each holds. All but invdyn and
# distance are U-Nets (NetworkEntry, ctp.models.builder.load_network); invdyn is the
# inverse-dynamics MLP (InvDynEntry), distance the goal distance MLP (DistanceEntry), both
# rebuilt by ctp.models.builder.load_mlp_network.
PLANNER_NETWORKS = {"teacher": "teacher", "student": "ctm", "critic": "critic",
                    "value": "value", "invdyn": "invdyn", "distance": "distance"}
MLP_NETWORKS = ("invdyn", "distance")  # the entries above that are not U-Nets
# Weights a planner file keeps in float32 under ctp bundle --half: statistics, not weights
# (the value net's return mean/std, the MLP's input standardisation, the distance's unit).
FULL_PRECISION = ("ret_mean", "ret_std", "in_mean", "in_std", "time_scale")
# Not a planner network: the SAC actor that generated a locomotion dataset.
BEHAVIOUR_KIND = "behaviour"


class NetworkEntry(TypedDict):
    """One network of a planner file."""

    unet: dict[str, Any]  # ctp.nn.UNetConfig fields (dim_mults as a list)
    state: dict[str, torch.Tensor]  # EMA weights (float16 with ctp bundle --half)
    step: int  # training step the weights are from


class ValueEntry(NetworkEntry, total=False):
    """The value network of a planner file (``ctp.models.value``): a NetworkEntry plus its
    training target's statistics (also the ``ret_mean`` / ``ret_std`` buffers in ``state``)."""

    returns: dict[str, float]  # gamma, mean, std


class InvDynEntry(TypedDict):
    """The inverse-dynamics MLP of a planner file (``ctp.models.inverse_dynamics``)."""

    invdyn: dict[str, Any]  # obs_dim, act_dim, hidden (list), stride (its k)
    state: dict[str, torch.Tensor]  # EMA weights (float16 with --half, statistics float32)
    step: int


class DistanceEntry(TypedDict):
    """The goal distance of a planner file (``ctp.models.distance``)."""

    distance: dict[str, Any]  # goal_dims, hidden (list), expectile, scale
    state: dict[str, torch.Tensor]  # EMA weights (float16 with --half, statistics float32)
    step: int


class TrainingCheckpoint(TypedDict, total=False):
    """``kind`` one of KINDS (``ctp/training/``). value checkpoints add ``returns`` (gamma,
    mean, std of the return-to-go target); invdyn and distance checkpoints hold ``invdyn`` /
    ``distance`` (the MLP's config) and no ``unet``/``edm``."""

    schema_version: int
    kind: str  # one of KINDS
    config: dict[str, Any]  # the full ctp.training.config.TrainConfig
    unet: dict[str, Any]  # U-Net config, as in NetworkEntry
    edm: dict[str, Any]  # ctp.models.edm.EDMConfig fields
    ctm: dict[str, Any]  # ctp.models.ctm.CTMConfig fields
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]  # what is loaded for use (load_model)
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]  # optional (files from before it was saved have none)
    normalizer: dict[str, Any]  # ctp.data.normalizer.Normalizer.state_dict()
    dataset_id: str
    horizon: int
    stride: int
    step: int
    loss: float  # recent mean training loss
    averaged_from: list[str]  # ctp average only
    returns: dict[str, float]  # value only: gamma, mean, std
    invdyn: dict[str, Any]  # invdyn only: obs_dim, act_dim, hidden, stride
    distance: dict[str, Any]  # distance only: goal_dims, hidden, expectile, scale


class PlannerFile(TypedDict, total=False):
    """``kind`` planner (``ctp/planning/bundle.py``); optional fields are newer than the
    shipped files, which read as their comments say."""

    schema_version: int
    kind: str  # "planner"
    task: str  # ctp.tasks name (absent: ctp.tasks.DEFAULT_TASK)
    maze: str  # older files only, instead of task
    dataset_id: str
    horizon: int
    stride: int
    normalizer: dict[str, Any]
    edm: dict[str, Any]
    ctm: dict[str, Any]
    ref_min_score: float | None
    ref_max_score: float | None
    student: NetworkEntry  # required; the keys of PLANNER_NETWORKS
    teacher: NetworkEntry | None
    critic: NetworkEntry | None
    value: ValueEntry | None  # the value scorer's network (ctp bundle --value)
    invdyn: InvDynEntry | None  # the locomotion controller's network (ctp bundle --invdyn)
    distance: DistanceEntry | None  # the distance scorer's network (ctp bundle --distance)
    # PlannerConfig fields the file ships with, and "replan"; older files also hold
    # dyn_weight and critic_weight here instead of "scorers".
    defaults: dict[str, Any]
    scorers: dict[str, float]  # scorer name -> weight (absent: defaults' weights imply them)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder + rename)."""
    payload = {"schema_version": SCHEMA_VERSION, **payload}
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def load_checkpoint(path: str | Path, kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read a checkpoint, checking its schema and (when given) its kind."""
    path = Path(path)
    if not path.is_file():
        raise CTPError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable, truncated or foreign pickles
        raise CTPError(f"{path}: not a readable ctp checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "schema_version" not in payload:
        raise CTPError(f"{path}: not a ctp checkpoint (no schema_version)")
    if payload["schema_version"] != SCHEMA_VERSION:
        raise CTPError(
            f"{path}: schema_version {payload['schema_version']}, expected {SCHEMA_VERSION}"
        )
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and payload.get("kind") not in wanted:
        raise CTPError(
            f"{path}: kind {payload.get('kind')!r}, expected {' or '.join(map(repr, wanted))}"
        )
    return payload


def prune_checkpoints(folder: Path, keep_best: int) -> None:
    """Keep ``latest.pt`` and the ``keep_best`` lowest-loss ``step-*.pt`` files."""
    scored = []
    for file in folder.glob("step-*.pt"):
        try:
            loss = float(file.stem.split("-loss-")[1])
        except (IndexError, ValueError):
            continue
        scored.append((loss, file))
    for _, file in sorted(scored)[keep_best:]:
        file.unlink(missing_ok=True)
