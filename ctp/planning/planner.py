"""The CTP planner: K candidates per environment in one batch, scored and ranked.

``Planner.plan_step`` is the graph-safe core (sample + score on device, no host syncs);
``Planner.plan`` adds normalisation, ranking with ``ctp._ranking`` and the first action. The
task the planner file was made for (``ctp.tasks``) supplies the plan condition, its scorers,
how a chosen plan is finished and the controller that turns it into actions; the plan score is
a weighted sum of named scorers (``ctp.planning.scorers``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctp import _ranking
from ctp.data.normalizer import Normalizer
from ctp.models.builder import load_mlp_network, load_network
from ctp.models.ctm import CTMConfig, ctm_sample
from ctp.models.edm import EDMConfig, heun_sample
from ctp.planning import scorers as scoring
from ctp.planning.bundle import bundled_planner_path, load_planner_file
from ctp.planning.config import PlannerConfig, defaults_of
from ctp.planning.targets import nearest_to_goal
from ctp.tasks import DEFAULT_ENV, DEFAULT_TASK, get_task, planning_task
from ctp.tasks.base import Candidates
from ctp.utils.checkpoint import MLP_NETWORKS, PLANNER_NETWORKS
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_options, finite, resolve_device

# How long a planner's first torch.compile takes on one CPU thread beside two busy ones
# (`ctp plan --env pointmaze-medium --compile --episodes 1`, whole command: 191 s the first
# time on this machine, 79-82 s with an empty cache folder, 19-22 s with a warm one, 5 s
# eager); the note before compiling says so.
COMPILE_TIME = "1-3 minutes"


def inductor_cache_dir() -> Path:
    """Where torch.compile keeps its compiled graphs and kernels between runs:
    ``$TORCHINDUCTOR_CACHE_DIR`` when set to a folder of the user's choice, else
    ``~/.cache/ctp/torchinductor`` (not torch's default under /tmp, which a reboot or a /tmp
    cleaner empties; torch writes that default into the variable when it is imported)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given and os.path.abspath(given) != os.path.abspath(default_cache_dir()):
        return Path(given)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "ctp" / "torchinductor"


def enable_compile_caches() -> Path:
    """Turn on inductor's on-disk caches (FX graphs, autotuning, compiled kernels) in
    :func:`inductor_cache_dir`, so a second run skips most of the compile; returns the folder."""
    import torch._inductor.config as inductor

    folder = inductor_cache_dir()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)  # read by inductor at each lookup
    inductor.fx_graph_cache = True
    inductor.autotune_local_cache = True
    return folder


def compile_note() -> str:
    """The line printed before a planner is compiled: what waits, how long, and the cache."""
    return (f"compiling the planner with torch.compile (inductor); the first run takes "
            f"{COMPILE_TIME}, later runs reuse the on-disk cache at {inductor_cache_dir()}")


# Observations and goals may lie at most this many data ranges outside the planner's data
# range (the normaliser's [low, high]); farther ones (1e30, a unit mix-up) are refused.
MAX_RANGES_OUTSIDE = 4.0


@dataclass
class PlanResult:
    """Chosen plans (raw env units, finished by the task, e.g. held at the goal once they
    reach it) ``[E, H, D]``, their scores ``[E]``, first actions ``[E, A]``, the
    wall-clock latency of the call (ms); with ``target_radius``, the state each env acts
    toward ``[E, D]`` (on the chosen plan), else None."""

    trajectory: np.ndarray
    score: np.ndarray
    action: np.ndarray
    latency_ms: float
    target: np.ndarray | None = None


def _entry(payload: dict[str, Any], key: str, source: str) -> Any:
    """``payload[key]`` of a planner file, or a CTPError naming the missing entry."""
    if payload.get(key) is None:
        raise CTPError(f"{source}: planner file has no {key!r} entry (re-bundle it with "
                       "ctp bundle)")
    return payload[key]


def _network_from(payload: dict[str, Any], key: str, edm: EDMConfig, device: torch.device,
                  source: str):
    """The network of a planner file's entry ``key`` (``PLANNER_NETWORKS``), frozen."""
    entry = _entry(payload, key, source)
    where = f"{source}: {key}"
    kind = PLANNER_NETWORKS[key]
    config = kind if kind in MLP_NETWORKS else "unet"
    if not isinstance(entry, dict) or config not in entry or "state" not in entry:
        raise CTPError(f"{where}: expected a dict with {config!r} and 'state'")
    if kind in MLP_NETWORKS:
        model = load_mlp_network(kind, entry[kind], entry["state"], where)
    else:
        model = load_network(kind, entry["unet"], entry["state"], edm, where)
    return model.to(device).eval().requires_grad_(False)


def _invdyn_from(payload: dict[str, Any], obs_dim: int, stride: int, horizon: int,
                 device: torch.device, source: str):
    """The inverse-dynamics MLP of a planner file's ``invdyn`` entry, frozen and checked: it
    reads observed states at least as wide as the planned ones (``obs_dim``; wider when plans
    hold a state's leading dims, then it reads only those of its target) and its k reaches a
    plan state (``check_reach``)."""
    from ctp.models.inverse_dynamics import check_reach, check_width

    model = _network_from(payload, "invdyn", None, device, source)
    try:
        check_width(model.obs_dim, model.target_dims, obs_dim)
        check_reach(model.stride, stride, horizon, model.target_dims)
    except CTPError as exc:
        raise CTPError(f"{source}: invdyn: {exc}") from None
    return model


def _sampler_constants(payload: dict[str, Any], source: str) -> tuple[EDMConfig, int]:
    """(EDM constants, CTM grid size N) a planner file's student was trained with; a file
    that does not record one takes the value every planner used before they were read
    (``EDMConfig``'s and ``CTMConfig``'s defaults)."""
    recorded = {"edm": payload.get("edm") or {}, "ctm": payload.get("ctm") or {}}
    for key, fields in (("edm", EDMConfig.__dataclass_fields__),
                        ("ctm", CTMConfig.__dataclass_fields__)):
        if not isinstance(recorded[key], dict) or recorded[key].keys() - fields.keys():
            raise CTPError(f"{source}: {key}: expected a dict of {', '.join(fields)}")
    edm = EDMConfig(**recorded["edm"])
    grid_size = recorded["ctm"].get("grid_size", CTMConfig.grid_size)
    sampling = {name: getattr(edm, name)
                for name in ("sigma_min", "sigma_max", "sigma_data", "rho")}
    check_options([(finite(v) and v > 0, f"{source}: edm.{name}", "a finite number > 0", v)
                   for name, v in sampling.items()])
    check_options([
        (edm.sigma_min < edm.sigma_max, f"{source}: edm.sigma_min",
         f"below sigma_max {edm.sigma_max:g}", edm.sigma_min),
        (isinstance(grid_size, int) and grid_size >= 2, f"{source}: ctm.grid_size", "an int >= 2",
         grid_size),
    ])
    return edm, grid_size


class Planner:
    """Plans for E environments at once from a planner file's networks."""

    def __init__(self, payload: dict[str, Any], config: PlannerConfig | None = None,
                 device: str | torch.device = "cpu", source: str = "") -> None:
        self.config = config or PlannerConfig()
        self.config.validate()
        self.device = resolve_device(str(device))
        self.source = source = source or "planner"
        self.payload_meta = {k: payload.get(k) for k in
                             ("task", "dataset_id", "horizon", "stride", "ref_min_score",
                              "ref_max_score")}
        # Files from before the task layer record no task: they were all made for the default.
        self.task = planning_task(get_task(payload.get("task") or DEFAULT_TASK))
        self.env = self.task.env_for_dataset(_entry(payload, "dataset_id", source))
        self.weights = scoring.resolve_weights(
            self.task, self.config.scorers,
            {flag: getattr(self.config, flag) for flag in scoring.ALIASES}, f"{source}: scorers")
        if self.config.goal_radius is None:
            self.config.goal_radius = self.task.goal_radius
        self.horizon = int(_entry(payload, "horizon", source))
        self.stride = int(_entry(payload, "stride", source))
        self.edm, self.grid_size = _sampler_constants(payload, source)
        self.normalizer = Normalizer.from_state_dict(_entry(payload, "normalizer", source),
                                                     source)
        self.obs_dim = self.normalizer.dim  # the planned states' width D
        if self.obs_dim < self.task.min_state_dim:
            raise CTPError(f"{source}: state dimension {self.obs_dim}, expected >= "
                           f"{self.task.min_state_dim} for task {self.task.name!r} (its scorer "
                           "and controller read the leading dims)")
        self._low = torch.tensor(self.normalizer.low, dtype=torch.float32, device=self.device)
        self._high = torch.tensor(self.normalizer.high, dtype=torch.float32, device=self.device)
        self.student = _network_from(payload, "student", self.edm, self.device, source)
        if self.student.net.cfg.obs_dim != self.obs_dim:
            raise CTPError(f"{source}: student plans {self.student.net.cfg.obs_dim}-dim "
                           f"states, the normaliser is {self.obs_dim}-dim")
        self.teacher = (_network_from(payload, "teacher", self.edm, self.device, source)
                        if payload.get("teacher") else None)
        # The networks of the learned scorers the file holds (loaded even at weight 0).
        self.scorer_networks = {
            spec.network: _network_from(payload, spec.network, self.edm, self.device, source)
            for spec in scoring.LEARNED.values() if payload.get(spec.network)}
        self.critic = self.scorer_networks.get("critic")
        self.value = self.scorer_networks.get("value")
        self.invdyn = (_invdyn_from(payload, self.obs_dim, self.stride, self.horizon,
                                    self.device, source)
                       if payload.get("invdyn") else None)
        # The observed states' width: the plans' own, or wider when they hold its leading
        # dims and the inverse dynamics reads the whole observed state (AntMaze x, y plans).
        self.state_dim = self.invdyn.obs_dim if self.invdyn is not None else self.obs_dim
        # Every network the file holds, by entry name, for the task's controller.
        self.networks = {**self.scorer_networks,
                         **({"invdyn": self.invdyn} if self.invdyn is not None else {})}
        if self.config.target_radius is not None:  # first: the controller may back off
            self._check_targeting(source)
        try:  # a task whose controller needs a network the file lacks says so now
            self.controller()
        except CTPError as exc:
            raise CTPError(f"{source}: {exc}") from None
        if self.config.sampler == "edm" and self.teacher is None:
            raise CTPError(f"{source}: --sampler edm needs a planner file with the teacher")
        self._terms = scoring.terms(self.task, self.weights, self.scorer_networks, source)
        # The plan state the controller heads for (its aim, else the inverse dynamics' k):
        # what the distance scorer rates.
        aim = self.config.aim or (self.invdyn.stride if self.invdyn is not None else self.stride)
        self.aim_state = min(aim / self.stride, self.horizon - 1.0)
        self.sample_and_score = self.plan_step  # compiled with config.compile
        if self.config.compile:
            # Weights frozen into the graph, elementwise work fused; fallback_random draws
            # the noise from torch's generator, so compiled and eager plans are the same.
            options = {"freezing": True, "fallback_random": True}
            enable_compile_caches()
            if self.config.sampler == "ctm":  # sampling and scoring in one graph
                self.sample_and_score = torch.compile(self.plan_step, dynamic=False,
                                                      options=options)
            else:  # a whole Heun loop would unroll 2N - 1 network calls: the network only
                self.teacher.net = torch.compile(self.teacher.net, dynamic=False,
                                                 options=options)
        self.graph = None

    def _check_targeting(self, source: str) -> None:
        """``target_radius`` needs goals, the goal distance and an action model that reads
        positions with a reach (it is asked that far toward the chosen state)."""
        invdyn = self.invdyn
        if self.task.goal_dims == 0:
            why = "the task has no goals"
        elif "distance" not in self.scorer_networks:
            why = "the planner file has no goal distance (ctp bundle --distance)"
        elif invdyn is None:
            why = "the planner file has no inverse dynamics"
        elif invdyn.target_dims != self.task.goal_dims or invdyn.reach is None:
            why = ("its inverse dynamics reads whole states, not positions (train it with "
                   f"--target-dims {self.task.goal_dims})")
        else:
            return
        raise CTPError(f"{source}: --target-radius: {why}; expected an AntMaze-style "
                       "planner (goal distance + position-reading inverse dynamics)")

    def controller(self):
        """A fresh controller of the task for this planner's plans (``ctp.tasks.base.Controller``;
        e.g. locomotion's reads the file's inverse dynamics)."""
        aim = self.config.aim
        if aim is not None:
            from ctp.models.inverse_dynamics import check_aim

            invdyn = self.networks.get("invdyn")
            check_aim(aim, self.stride, self.horizon,
                      None if invdyn is None else invdyn.target_dims)
        # Only acting toward a state backs off (checked before); other tasks never see it.
        extra = {"back_off": self.config.back_off} if self.config.back_off else {}
        return self.task.controller(self.stride, self.networks, self.config.velocities, aim,
                                    **extra)

    def scorer_weights(self) -> dict[str, float]:
        """Scorer name -> weight: the task's defaults with this planner's settings."""
        return dict(self.weights)

    def scorer_name(self) -> str:
        """The scoring rule in words, e.g. ``reward - 10*dynamics + 1*critic``."""
        return scoring.describe(self.task, self.weights)

    # ---------------------------------------------------------------- graph-safe core

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * (x - self._low) / (self._high - self._low) - 1.0

    def _unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1.0) * 0.5 * (self._high - self._low) + self._low

    def plan_step(self, state: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Sample and score K candidates for each of E envs; no host syncs.

        state ``[E, D]`` and goal ``[E, G]`` (raw env units) -> (candidates raw
        ``[E, K, H, D]``, scores ``[E, K]``); D = ``obs_dim``, G = the task's ``goal_dims``.
        """
        cfg, k, d = self.config, self.config.candidates, self.obs_dim
        e = goal.shape[0]
        goals = goal.repeat_interleave(k, dim=0)
        start_n = self._normalize(state).repeat_interleave(k, dim=0)
        mask, value = self.task.plan_condition(start_n, goals, self.horizon, self._normalize)
        noise = torch.randn(e * k, self.horizon, d, device=state.device) * self.edm.sigma_max
        if cfg.sampler == "ctm":
            x = ctm_sample(self.student, noise, mask, value, cfg.jumps, cfg.gamma,
                           grid_size=self.grid_size)
        else:
            x = heun_sample(self.teacher, noise, mask, value, cfg.edm_steps, self.edm)
        raw = self._unnormalize(x)
        plans = Candidates(x, raw, goals, mask, value, self.stride, cfg.goal_radius,
                           self.aim_state)
        scores = scoring.weighted_sum(self._terms, plans)
        return raw.view(e, k, self.horizon, d), scores.view(e, k)

    # ----------------------------------------------------------------------- host API

    @torch.no_grad()
    def plan(self, observation: np.ndarray | torch.Tensor,
             goal: np.ndarray | torch.Tensor | None = None) -> PlanResult:
        """Best plan for each env. observation ``[E, S]`` or ``[S]`` (S = ``state_dim``: the
        planned width ``obs_dim`` = D, or wider when plans hold its leading D dims); goal
        ``[E, G]`` or ``[G]`` (G = the task's ``goal_dims``, e.g. x, y; None for a task
        without goals, e.g. locomotion).

        Inputs must be finite and near the planner's data range, and the plan it returns is
        checked finite (else a CTPError). The first call (and with ``compile`` the first per
        batch size) pays a one-off warm-up, about 0.7 s eagerly on CPU: time later calls.
        """
        start = time.perf_counter()
        obs_np, single = self._checked_input(observation, "observation", self.state_dim)
        if goal is None and self.task.goal_dims == 0:
            goal = np.zeros((len(obs_np), 0), np.float32)
        goal_np, _ = self._checked_input(goal, "goal", self.task.goal_dims)
        if len(obs_np) != len(goal_np):
            raise CTPError(f"plan: observation holds {len(obs_np)} envs but goal "
                           f"{len(goal_np)}; expected one goal per observation")
        state = torch.from_numpy(obs_np[:, :self.obs_dim]).to(self.device)
        goal_t = torch.from_numpy(goal_np).to(self.device)
        graphed = self.graph is not None and self.graph.num_envs == len(state)
        step = self.graph if graphed else self.sample_and_score  # other batch sizes: no graph
        candidates, scores = step(state, goal_t)
        scores_np = scores.float().cpu().numpy()
        target = None
        if self.config.target_radius is None:
            best = _ranking.best(scores_np)
        else:  # the plan that holds the state to act toward
            position = state[:, : self.task.goal_dims]
            try:
                index, chosen_state = nearest_to_goal(
                    candidates.float(), position, goal_t, self.scorer_networks["distance"],
                    self.config.target_radius)
            except CTPError as exc:
                raise CTPError(f"{self.source}: {exc}") from None
            best, target = index.cpu().numpy(), chosen_state.cpu().numpy()
        chosen = candidates[torch.arange(len(best)), torch.from_numpy(best).to(self.device)]
        trajectory = self.task.finish_plans(chosen.float().cpu().numpy(), goal_t.cpu().numpy(),
                                            self.config.goal_radius)
        controller = self.controller()
        controller.set_plans(trajectory, target)
        action = controller.act(obs_np)
        if not (np.isfinite(trajectory).all() and np.isfinite(action).all()):
            raise CTPError(f"{self.source}: the networks produced a non-finite plan (NaN or "
                           "inf); no action is returned")
        latency = (time.perf_counter() - start) * 1e3
        score = scores_np[np.arange(len(best)), best]
        if single:
            return PlanResult(trajectory[0], score[0], action[0], latency,
                              None if target is None else target[0])
        return PlanResult(trajectory, score, action, latency, target)

    def _checked_input(self, value: Any, name: str, width: int) -> tuple[np.ndarray, bool]:
        """(``value`` as float32 ``[E, width]``, whether it was one ``[width]`` row), checked:
        numeric, E >= 1, finite, and its dims the planner's data spans (the planned ones)
        within ``MAX_RANGES_OUTSIDE`` data ranges of that data."""
        expected = f"an array of shape [E, {width}] with E >= 1, or [{width}]"
        if value is None:
            raise CTPError(f"plan: {name}: expected {expected}, got None")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise CTPError(f"plan: {name}: expected {expected}, got a ragged or non-numeric "
                           f"{type(value).__name__}") from None
        single = arr.ndim == 1
        arr = arr[None] if single else arr
        if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] == 0:
            raise CTPError(f"plan: {name}: expected {expected}, got shape {np.shape(value)}")
        ranged = min(width, self.obs_dim)
        low, high = self.normalizer.low[:ranged], self.normalizer.high[:ranged]
        margin = MAX_RANGES_OUTSIDE * (high - low)
        bad = ~np.isfinite(arr)
        bad[:, :ranged] |= (arr[:, :ranged] < low - margin) | (arr[:, :ranged] > high + margin)
        if bad.any():
            env, dim = (int(i) for i in np.argwhere(bad)[0])
            where = (f" within {MAX_RANGES_OUTSIDE:g} data ranges of the planner's "
                     f"[{low[dim]:.3g}, {high[dim]:.3g}]" if dim < ranged else "")
            raise CTPError(f"plan: {name}[{env}, {dim}] is {arr[env, dim]:g}, expected a "
                           f"finite number{where}")
        return np.ascontiguousarray(arr), single

    def enable_cuda_graphs(self, num_envs: int) -> bool:
        """Capture ``plan_step`` for ``num_envs`` envs in a CUDA graph; False without CUDA."""
        from ctp.planning.cuda_graph import GraphedPlanStep

        if self.device.type != "cuda":
            return False
        self.graph = GraphedPlanStep(self.plan_step,
                                     torch.zeros(num_envs, self.obs_dim, device=self.device),
                                     torch.zeros(num_envs, self.task.goal_dims,
                                                 device=self.device))
        return True


def load_planner(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    config: PlannerConfig | None = None,
    env: str = DEFAULT_ENV,
) -> Planner:
    """A :class:`Planner` from a planner file (default: the one bundled for ``env``)."""
    if path is not None and not isinstance(path, str | os.PathLike):
        raise CTPError(f"load_planner: path: expected a planner file path (str or "
                       f"os.PathLike) or None, got {type(path).__name__} {path!r}")
    path = Path(path) if path is not None else bundled_planner_path(env)
    if not path.exists() and path == bundled_planner_path(env):
        raise CTPError(f"no planner is bundled for {env} in this install: {path}")
    payload = load_planner_file(path)
    if config is None:
        config = defaults_of(payload)
    return Planner(payload, config, device, source=str(path))
