"""The six training objectives (teacher, ctm, critic, value, invdyn, distance): each gives the
trainable module, its EMA copy, its data and a loss per batch (``ctp.training.loop`` runs
them)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ctp.data.normalizer import Normalizer
from ctp.data.windows import TrajectoryWindows, WindowConfig
from ctp.models.builder import build_teacher, load_model, unet_config
from ctp.models.ctm import CTMStudent, ctm_loss, ctm_sample, one_jump_loss
from ctp.models.distance import GoalDistance, TimePairs, expectile_loss, stitched_target
from ctp.models.edm import EDMConfig, edm_loss
from ctp.models.inverse_dynamics import InverseDynamics, TransitionPairs
from ctp.models.value import ReturnWindows, ValueNet
from ctp.nn import Critic, UNetConfig
from ctp.tasks import task_for_dataset
from ctp.tasks.base import StepStream, Task
from ctp.training.config import BASE_DEFAULTS, OBJECTIVE_DEFAULTS, TrainConfig
from ctp.training.teacher_pairs import load_pairs
from ctp.utils.errors import CTPError


class Objective:
    """A trainable ``module``, its ``ema`` copy and ``loss(batch) -> (loss, parts)``.

    Built as ``Objective(cfg, device, obs_dim)`` with ``obs_dim`` the dataset's state width;
    ``defaults`` are the objective's values of the ``TrainConfig`` fields left at None (over
    the base class's). ``source`` is called once right after: it gives the data the batches
    come from (an object with ``len``, ``batch(idx) -> dict`` and ``normalizer``) and may
    finish the module from the data (invdyn: action width, input statistics).
    """

    defaults: ClassVar[dict[str, Any]] = BASE_DEFAULTS
    module: nn.Module
    ema: nn.Module
    unet: UNetConfig
    edm: EDMConfig

    def source(self, cfg: TrainConfig, task: Task, data: StepStream,
               normalizer: Normalizer | None) -> Any:
        """Dataset windows of the run's horizon and stride (their condition included)."""
        return TrajectoryWindows(task, data, WindowConfig(cfg.horizon, cfg.stride,
                                                          cfg.hindsight_goals), normalizer)

    def network_payload(self) -> dict[str, Any]:
        """The network configs a checkpoint records (rebuilt from them by the loaders)."""
        return {"unet": self.unet.to_dict() | {"dim_mults": list(self.unet.dim_mults)},
                "edm": self.edm.to_dict()}

    def loss(self, batch: dict[str, torch.Tensor], k: int) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError


class TeacherObjective(Objective):
    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.unet = UNetConfig(obs_dim=obs_dim, horizon=cfg.horizon, dim=cfg.dim,
                               dim_mults=cfg.dim_mults, backend="auto")
        self.edm = EDMConfig()
        self.module = build_teacher(self.unet, self.edm).to(device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)

    def loss(self, batch, k):
        loss = edm_loss(self.module, batch["x"], batch["mask"], batch["value"], self.edm)
        return loss, {}


class CTMObjective(Objective):
    """CTM + DSM, plus with ``pairs`` the one-jump regression on teacher ODE pairs (a batch
    of pairs drawn with the default generator each step: graph-safe)."""

    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS["ctm"]

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.teacher, payload = load_model(cfg.teacher, "teacher", str(device))
        _check_obs_dim(self.teacher.net.cfg, obs_dim, "--teacher")
        self.edm = self.teacher.cfg
        self.ctm = cfg.ctm
        self.module = CTMStudent.from_teacher(self.teacher, cfg.student_dim)
        self.module.train().requires_grad_(True)
        self.unet = self.module.net.cfg
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        # The pairs were drawn from the teacher's dataset: its task conditions them.
        self.task = task_for_dataset(payload["dataset_id"])
        self.pairs = ({k: v.to(device) for k, v in
                       load_pairs(cfg.pairs, payload, self.teacher).items()}
                      if cfg.pairs else None)

    def loss(self, batch, k):
        loss, parts = ctm_loss(self.module, self.ema, self.teacher, batch["x"], batch["mask"],
                               batch["value"], self.ctm, k=k)
        if self.pairs is None:
            return loss, parts
        x = batch["x"]
        idx = torch.randint(0, self.pairs["noise"].shape[0], (x.shape[0],), device=x.device)
        mask, value = self.task.condition(self.pairs["start"][idx], self.pairs["goal"][idx],
                                          x.shape[1])
        pair = one_jump_loss(self.module, self.pairs["noise"][idx], mask, value,
                             self.pairs["target"][idx])
        return loss + self.ctm.pair_weight * pair, {**parts, "pair": pair.detach()}


class CriticObjective(Objective):
    """Real dataset windows (label 1) vs. one-jump student samples with the same condition."""

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.student, payload = load_model(cfg.student, "ctm", str(device))
        self.unet = unet_config(payload, s_embedding=False)
        _check_obs_dim(self.unet, obs_dim, "--student")
        self.edm = self.student.edm
        self.module = Critic(self.unet).to(device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)

    def loss(self, batch, k):
        x, mask, value = batch["x"], batch["mask"], batch["value"]
        with torch.no_grad():
            noise = torch.randn_like(x) * self.edm.sigma_max
            fake = ctm_sample(self.student, noise, mask, value, jumps=1)
        logits = self.module(torch.cat([x, fake]), torch.cat([mask, mask]),
                             torch.cat([value, value]))
        labels = torch.cat([torch.ones(len(x)), torch.zeros(len(x))]).to(logits)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        accuracy = ((logits > 0).float() == labels).float().mean()
        return loss, {"accuracy": accuracy.detach()}


class ValueObjective(Objective):
    """V(window) regressed on the discounted return-to-go of the window's first step
    (``ctp.models.value``): MSE on the target standardised with its mean and std over the
    training windows (kept in the network's buffers and the checkpoint's ``returns``)."""

    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS["value"]

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.unet = UNetConfig(obs_dim=obs_dim, horizon=cfg.horizon, dim=cfg.dim,
                               dim_mults=cfg.dim_mults, backend="auto")
        self.module = ValueNet(self.unet).to(device)

    def source(self, cfg, task, data, normalizer):
        windows = ReturnWindows(super().source(cfg, task, data, normalizer), cfg.gamma)
        self.stats = {"gamma": cfg.gamma, "mean": windows.mean, "std": windows.std}
        self.module.set_target_stats(windows.mean, windows.std)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        return windows

    def network_payload(self):
        return {"unet": self.unet.to_dict() | {"dim_mults": list(self.unet.dim_mults)},
                "edm": None, "returns": dict(self.stats)}

    def loss(self, batch, k):
        net = self.module  # through forward (what --compile compiles), then standardised
        pred = (net(batch["x"], batch["mask"], batch["value"]) - net.ret_mean) / net.ret_std
        return F.mse_loss(pred, batch["target"]), {}


class InvDynObjective(Objective):
    """``a_t = f(s_t, s_{t+k})`` with k = ``stride`` (``ctp.models.inverse_dynamics``): MSE on the
    dataset's transition pairs, raw states in, raw actions out."""

    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS["invdyn"]

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.device, self.hidden = device, cfg.hidden  # the module is built from the data
        self.target_dims = cfg.target_dims

    def source(self, cfg, task, data, normalizer):
        pairs = TransitionPairs(data, cfg.stride, normalizer)
        self.module = InverseDynamics(pairs.obs_dim, pairs.act_dim, self.hidden, cfg.stride,
                                      self.target_dims)
        self.module.set_input_stats(pairs.inputs)
        self.module.to(self.device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        return pairs

    def network_payload(self):
        return {"unet": None, "edm": None, "invdyn": self.module.config()}

    def loss(self, batch, k):
        x, d = batch["inputs"], self.module.obs_dim
        return F.mse_loss(self.module(x[:, :d], x[:, d:]), batch["actions"]), {}


class DistanceObjective(Objective):
    """``d(position, goal)``: the env steps between two places of one episode, fitted at a low
    expectile, stitched across episodes through waypoints when asked (``ctp.models.distance``;
    the EMA copy gives the bootstrap's estimates); raw positions in, env steps out."""

    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS["distance"]

    def __init__(self, cfg: TrainConfig, device: torch.device, obs_dim: int) -> None:
        self.device, self.hidden, self.expectile = device, cfg.hidden, cfg.expectile

    def source(self, cfg, task, data, normalizer):
        goal_dims = getattr(task, "goal_dims", 0)  # a training-only Task may have no goals
        pairs = TimePairs(data, goal_dims, normalizer, cfg.waypoints, cfg.random_goals)
        self.module = GoalDistance(goal_dims, self.hidden, self.expectile, pairs.scale)
        self.module.mlp.set_input_stats(pairs.input_sample(seed=cfg.seed))
        self.module.to(self.device)
        self.ema = copy.deepcopy(self.module).requires_grad_(False)
        return pairs

    def network_payload(self):
        return {"unet": None, "edm": None, "distance": self.module.config()}

    def loss(self, batch, k):
        net = self.module  # through forward (what --compile compiles), in units of the scale
        pred = net(batch["position"], batch["goal"]) / net.time_scale
        target = stitched_target(self.ema, batch) if "waypoint" in batch else batch["target"]
        return expectile_loss(pred, target, self.expectile), {}


OBJECTIVES: dict[str, type[Objective]] = {
    "teacher": TeacherObjective, "ctm": CTMObjective, "critic": CriticObjective,
    "value": ValueObjective, "invdyn": InvDynObjective, "distance": DistanceObjective,
}


def _check_obs_dim(unet: UNetConfig, obs_dim: int, option: str) -> None:
    """Refuse a parent network whose state width is not the dataset's."""
    if unet.obs_dim != obs_dim:
        raise CTPError(f"{option}: its network plans {unet.obs_dim}-dim states, the dataset "
                       f"has {obs_dim}-dim observations")
