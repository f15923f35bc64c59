"""Train a locomotion behaviour policy with stable-baselines3's SAC, D4RL-style.

One run per task and seed in a run folder:

- ``config.json``: the run's settings; rerunning the same command resumes, a changed setting
  is refused;
- ``evals.jsonl``: one row per ``eval_every`` env steps (deterministic evaluation return, its
  D4RL-normalised score, wall seconds; and the stochastic check's score where it ran);
- ``checkpoints/actor-<step>.pt``: the actor at every evaluation (ctp behaviour checkpoints);
- ``state/``: SAC model + replay buffer of the last evaluation, for resuming after a kill;
- ``learning-curve.png``: evaluation return over env steps, redrawn at every evaluation;
- ``medium.json`` + ``medium-actor.pt`` + ``replay.npz``: written at the medium checkpoint;
  training stops there, and ``replay.npz`` holds every transition up to that step in order (the
  medium-replay dataset's source).

The medium checkpoint is the first whose deterministic evaluation reaches the task's target
(D4RL's rule) *and* whose stochastic policy, the one that writes the dataset, scores at least
the lower end of the task's medium band over ``check_episodes`` episodes. The second test runs
only where the first passes. Without it a walker that walks when deterministic but falls in a
third of its stochastic episodes passes, and its dataset lands below D4RL's band.

rl-zoo's MuJoCo SAC hyperparameters are stable-baselines3's defaults (lr 3e-4, batch 256,
256x256 MLPs, automatic entropy, buffer 1M) with 10k random-action steps first.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctp.nn.actor import SquashedGaussianActor, save_actor
from ctp.tasks.locomotion.plot import plot_learning_curves
from ctp.tasks.locomotion.rollout import rollout_returns
from ctp.tasks.locomotion.spec import LocomotionSpec, get_task
from ctp.tasks.sac_runs import SACRunFolder, learn_with_evaluations
from ctp.utils.atomic import atomic_write, write_json
from ctp.utils.errors import CTPError
from ctp.utils.stats import mean_se
from ctp.utils.validation import MAX_SEED, check_options, finite, int_option

EVAL_SEED_OFFSET = 10_000  # evaluation episodes use seeds apart from training's
CHECK_SEED_OFFSET = 20_000  # and the stochastic check's apart from both


@dataclass
class BehaviourConfig:
    """What ``ctp data generate <task>-medium --train-policy`` trains."""

    task: str
    run_dir: str = ""  # default: runs/behaviour/<task>-seed<seed>
    seed: int = 0
    max_steps: int = 1_000_000
    eval_every: int = 10_000
    eval_episodes: int = 10
    learning_starts: int = 10_000
    target: float | None = None  # D4RL-normalised medium level; None: the task's
    check_episodes: int = 50  # episodes of the stochastic check at a checkpoint on target
    check_min: float | None = None  # its D4RL-normalised floor; None: the task's band's low end
    progress: bool = True

    def resolved(self) -> BehaviourConfig:
        """A copy with the run folder and target filled in, after checking every field."""
        spec = get_task(self.task)
        target = spec.medium_target if self.target is None else self.target
        check_min = spec.medium_band[0] if self.check_min is None else self.check_min
        check_options([
            *((getattr(self, name) >= 1, f"--{name.replace('_', '-')}", ">= 1",
               getattr(self, name))
              for name in ("max_steps", "eval_every", "eval_episodes", "check_episodes")),
            int_option("--seed", self.seed, 0, MAX_SEED),
            (self.learning_starts >= 0, "--learning-starts", ">= 0", self.learning_starts),
            (finite(target), "--target", "a finite score", target),
            (finite(check_min), "--check-min", "a finite score", check_min),
        ])
        run_dir = self.run_dir or f"runs/behaviour/{self.task}-seed{self.seed}"
        return dataclasses.replace(self, run_dir=run_dir, target=float(target),
                                   check_min=float(check_min))


@dataclass
class BehaviourResult:
    """Where the medium checkpoint of a finished run stands."""

    task: str
    step: int
    return_mean: float
    normalized: float
    stochastic_normalized: float  # the stochastic check's score, check_episodes episodes
    seconds: float
    actor_path: str
    replay_path: str


def evaluate_actor(
    spec: LocomotionSpec, actor: SquashedGaussianActor, episodes: int, seed: int,
    deterministic: bool = True,
) -> np.ndarray:
    """Returns ``[episodes]`` of ``actor`` in ``spec``'s env, seeds seed, seed+1, ..."""
    generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def policy(obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32)[None]
        return actor(x, deterministic=deterministic, generator=generator)[0].numpy()

    return rollout_returns(spec, policy, episodes, seed)


def _export_actor(model: Any, spec: LocomotionSpec) -> SquashedGaussianActor:
    actor = SquashedGaussianActor(spec.obs_dim, spec.act_dim)
    state = {k: v for k, v in model.actor.state_dict().items() if not k.startswith("features")}
    actor.load_state_dict(state)
    return actor.eval()


def _export_replay(model: Any, steps: int, path: Path) -> None:
    """The first ``steps`` transitions of SAC's replay buffer, in order, as an ``.npz``."""
    buf = model.replay_buffer
    if buf.pos < steps or buf.full:
        raise CTPError(f"{path}: the replay buffer holds {buf.pos} steps, expected {steps}")
    arrays = {
        "observations": buf.observations[:steps, 0],
        "next_observations": buf.next_observations[:steps, 0],
        "actions": buf.actions[:steps, 0],
        "rewards": buf.rewards[:steps, 0],
        "terminations": buf.dones[:steps, 0] * (1 - buf.timeouts[:steps, 0]),
        "truncations": buf.timeouts[:steps, 0],
    }
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


class _Run(SACRunFolder):
    """The run folder's files and SAC's evaluate/checkpoint/stop loop."""

    def __init__(self, cfg: BehaviourConfig):
        super().__init__(cfg)
        self.spec = get_task(cfg.task)

    def finished(self) -> BehaviourResult | None:
        path = self.dir / "medium.json"
        if not path.exists():
            return None
        return BehaviourResult(**json.loads(path.read_text()))

    def load_or_make(self) -> tuple[Any, float]:
        """(SAC model, wall seconds already spent), resumed from ``state/`` when there."""
        from stable_baselines3 import SAC

        env = self.spec.make_env()
        progress = self.state / "progress.json"
        if progress.exists():
            done = json.loads(progress.read_text())
            model = SAC.load(self.state / "model.zip", env=env, device="cpu")
            model.load_replay_buffer(self.state / "replay.pkl")
            if model.num_timesteps != done["step"] or model.replay_buffer.pos != done["step"]:
                raise CTPError(f"{self.state}: model, replay buffer and progress.json disagree "
                               "(torn save); delete the folder to restart the run")
            return model, float(done["seconds"])
        model = SAC("MlpPolicy", env, learning_starts=self.cfg.learning_starts,
                    seed=self.cfg.seed, device="cpu", verbose=0)
        return model, 0.0

    def on_eval(self, model: Any, seconds: float) -> bool:
        """Evaluate, log, checkpoint; True at the medium checkpoint (see the module doc)."""
        step = model.num_timesteps
        actor = _export_actor(model, self.spec)
        summary = mean_se(evaluate_actor(self.spec, actor, self.cfg.eval_episodes,
                                         self.cfg.seed + EVAL_SEED_OFFSET))
        row = {
            "step": step,
            "return_mean": summary["mean"],
            "return_se": summary["se"],
            "normalized": self.spec.normalized(summary["mean"]),
            "seconds": seconds,
        }
        info = {"task": self.spec.name, "env_id": self.spec.env_id, "seed": self.cfg.seed,
                "step": step, "eval_return": row["return_mean"],
                "eval_normalized": row["normalized"], "eval_episodes": self.cfg.eval_episodes}
        reached = row["normalized"] >= float(self.cfg.target)
        if reached:
            check = evaluate_actor(self.spec, actor, self.cfg.check_episodes,
                                   self.cfg.seed + CHECK_SEED_OFFSET, deterministic=False)
            row["stochastic_normalized"] = self.spec.normalized(float(check.mean()))
            info["stochastic_normalized"] = row["stochastic_normalized"]
            info["stochastic_episodes"] = self.cfg.check_episodes
            reached = row["stochastic_normalized"] >= float(self.cfg.check_min)
        ckpt = save_actor(self.dir / "checkpoints" / f"actor-{step:07d}.pt", actor, info)
        if reached:
            shutil.copyfile(ckpt, self.dir / "medium-actor.pt")
            _export_replay(model, step, self.dir / "replay.npz")
            write_json(self.dir / "medium.json", dataclasses.asdict(BehaviourResult(
                self.spec.name, step, row["return_mean"], row["normalized"],
                row["stochastic_normalized"], seconds, str(self.dir / "medium-actor.pt"),
                str(self.dir / "replay.npz"))))
        else:
            self.save_state(model, seconds)
        with open(self.dir / "evals.jsonl", "a") as fh:  # after the state: no duplicate rows
            fh.write(json.dumps(row) + "\n")
        plot_learning_curves([self.dir], self.dir / "learning-curve.png")
        return reached


def train_behaviour(cfg: BehaviourConfig) -> BehaviourResult:
    """Train SAC until an evaluation reaches the medium target; resumable after a kill."""
    from tqdm import tqdm

    cfg = cfg.resolved()
    run = _Run(cfg)
    run.dir.mkdir(parents=True, exist_ok=True)
    run.check_config()
    if (result := run.finished()) is not None:
        return result
    model, spent = run.load_or_make()
    start = time.perf_counter() - spent
    last = run.evals()
    bar = tqdm(total=cfg.max_steps, initial=model.num_timesteps, unit="step",
               desc=f"SAC {run.spec.env_id}", disable=not cfg.progress, mininterval=2.0)
    if last:
        bar.set_postfix(ret=f"{last[-1]['return_mean']:.0f}", norm=f"{last[-1]['normalized']:.1f}")


    def postfix() -> dict[str, str]:
        row = run.evals()[-1]
        return {"ret": f"{row['return_mean']:.0f}", "norm": f"{row['normalized']:.1f}"}

    learn_with_evaluations(model, cfg.max_steps, cfg.eval_every,
                           lambda m: run.on_eval(m, time.perf_counter() - start), bar, postfix)
    result = run.finished()
    if result is None:
        raise CTPError(
            f"{cfg.task}: no checkpoint reached the medium target {cfg.target} (stochastic "
            f"check >= {cfg.check_min}) in {cfg.max_steps} steps; see {run.dir / 'evals.jsonl'}"
        )
    return result
