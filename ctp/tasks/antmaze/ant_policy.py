"""Train the ant controller: SAC (sbx-rl, stable-baselines3's JAX twin), open ground to maze.

One run in a run folder, resumable like the locomotion behaviour runs:

- ``config.json``: the run's settings; rerunning the same command resumes, a changed setting
  is refused (the step budget may grow);
- ``evals.jsonl``: one row every ``eval_every`` env steps (its curriculum ``stage``, seconds):
  on open ground, the deterministic actor's mean speed along the commanded direction (m/s, a
  fallen ant counts 0 for the rest of its episode) and its falls; in the maze stage, the
  data-generating controller's success rate with this actor on the medium and large eval tasks
  (validation seeds) and their mean ``success``;
- ``checkpoints/actor-<step>.pt``: the actor at every evaluation (ctp behaviour checkpoints);
- ``state/``: SAC model + replay buffer every ``save_every`` steps, for resuming after a kill;
- ``learning-curve.png``: the evaluations over env steps;
- ``ant-actor.pt`` + ``result.json``: the shipped actor, written when the run stops.

A curriculum of three tasks in the one run (``StagedEnv`` switches at an evaluation):
``narrow``, open ground with commanded directions turning by up to ``turn_degrees`` (SAC
learns a gait on near-forward directions; from uniform directions it learned none in 300k
steps); ``wide`` from ``wide_turns_from``, turns by up to ``wide_turn_degrees`` (it learns to
turn toward any direction); ``maze`` from ``maze_from``, the maze's own walls and corners with
the solver's directions (``ctp.tasks.antmaze.maze_steering``).

Stop rule, over the maze stage's evaluations: after ``min_steps``, training stops at the first
evaluation where the best mean success has not grown by ``plateau_gain`` (relative) over the
last ``patience`` evaluations, or at ``max_steps``. The shipped actor is that best one.

sbx is about twice as fast as stable-baselines3 per SAC step on this CPU (docs/design.md); its
actor has stable-baselines3's layout, so it exports to ``SquashedGaussianActor`` and ships as
torch weights. JAX is held to one thread, like every background run here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ctp.nn.actor import SquashedGaussianActor, save_actor
from ctp.tasks.antmaze.maze_steering import MazeSteeringAntEnv
from ctp.tasks.antmaze.steering import ANT_OBS_DIM, DIRECTION_DIM, SteeringAntEnv
from ctp.tasks.sac_runs import SACRunFolder, learn_with_evaluations
from ctp.utils.atomic import atomic_write, write_json
from ctp.utils.errors import CTPError
from ctp.utils.validation import check_options

EVAL_SEED_OFFSET = 10_000  # evaluation episodes use seeds apart from training's
MAZE_EVALS = ("medium-play", "large-play")  # the maze stage's evaluation tasks
VALIDATION_SEED = 2000  # ... their episodes' first seed: apart from the expert row's 0..99
ACT_DIM = 8
ONE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclass
class AntPolicyConfig:
    """What ``ctp data generate antmaze-<name> --train-policy`` trains."""

    run_dir: str = ""  # default: runs/ant-controller-seed<seed>
    seed: int = 0
    max_steps: int = 900_000
    min_steps: int = 400_000
    eval_every: int = 10_000
    eval_episodes: int = 5
    save_every: int = 50_000
    learning_starts: int = 10_000
    patience: int = 6
    plateau_gain: float = 0.02
    healthy_reward: float = 1.0  # SteeringAntEnv's shaping
    ctrl_cost: float = 0.5
    body_frame: bool = True  # the direction in the torso's heading frame
    # SteeringAntEnv's turn_range: turn_degrees until wide_turns_from env steps (learn a gait
    # on near-forward directions), wide_turn_degrees from there on (turn toward any direction).
    turn_degrees: float = 45.0
    wide_turns_from: int = 250_000
    wide_turn_degrees: float = 180.0
    # From maze_from env steps on, the ant walks the diverse map of this maze, steered by the
    # data-generating solver (MazeSteeringAntEnv); evaluations are then the solver + actor's
    # success on the medium and large eval tasks, maze_eval_episodes each, validation seeds.
    maze_from: int = 300_000
    maze: str = "medium"
    maze_eval_episodes: int = 10
    progress: bool = True

    def resolved(self) -> AntPolicyConfig:
        """A copy with the run folder filled in, after checking every field."""
        check_options([
            *((getattr(self, name) >= 1, f"--{name.replace('_', '-')}", ">= 1",
               getattr(self, name))
              for name in ("max_steps", "eval_every", "eval_episodes", "save_every",
                           "patience")),
            (0 <= self.seed < 2**32, "--policy-seed", "an integer in 0..2^32-1", self.seed),
            (self.learning_starts >= 0, "--learning-starts", ">= 0", self.learning_starts),
            (self.save_every % self.eval_every == 0, "--save-every",
             "a multiple of --eval-every", self.save_every),
            (0 <= self.plateau_gain < 1, "--plateau-gain", "in [0, 1)", self.plateau_gain),
            *((getattr(self, name) % self.eval_every == 0, name, "a multiple of --eval-every",
               getattr(self, name)) for name in ("wide_turns_from", "maze_from")),
            (self.wide_turns_from <= self.maze_from < self.min_steps, "maze_from",
             "between wide_turns_from and min_steps", self.maze_from),
            (self.maze in ("umaze", "medium", "large"), "maze", "umaze, medium or large",
             self.maze),
        ])
        return dataclasses.replace(
            self, run_dir=self.run_dir or f"runs/ant-controller-seed{self.seed}")


def export_actor(model: Any) -> SquashedGaussianActor:
    """sbx SAC's actor parameters -> a torch ``SquashedGaussianActor`` (29 -> 8)."""
    params = model.policy.actor_state.params["params"]
    dense = [params[f"Dense_{i}"] for i in range(len(params))]
    hidden = tuple(int(np.asarray(d["kernel"]).shape[1]) for d in dense[:-2])
    actor = SquashedGaussianActor(ANT_OBS_DIM + DIRECTION_DIM, ACT_DIM, hidden)
    linears = [m for m in actor.latent_pi if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer, d in zip([*linears, actor.mu, actor.log_std], dense):
            layer.weight.copy_(torch.as_tensor(np.array(d["kernel"]).T))
            layer.bias.copy_(torch.as_tensor(np.array(d["bias"])))
    return actor.eval()


@torch.no_grad()
def evaluate_steering(actor: SquashedGaussianActor, episodes: int, seed: int,
                      body_frame: bool = False, turn_range: float = np.pi
                      ) -> dict[str, float]:
    """The deterministic actor on ``episodes`` steering episodes (seeds seed, seed+1, ...):
    mean speed along the commanded direction over every step of every episode (m/s; steps after
    a fall count 0) and the number of falls."""
    env = SteeringAntEnv(body_frame=body_frame, turn_range=turn_range)
    total, falls, steps = 0.0, 0, 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        while True:
            action = actor(torch.as_tensor(obs)[None], deterministic=True)[0].numpy()
            obs, _, terminated, truncated, info = env.step(action)
            total += info["speed_along"]
            if terminated or truncated:
                falls += int(terminated)
                break
        steps += env.max_steps
    env.close()
    return {"speed": total / steps, "falls": falls}


class StagedEnv(gym.Env):
    """SAC's one env over the curriculum: the current stage's env; a stage switched to takes
    over at the next reset, and the episode in progress ends (truncated) at its next step."""

    metadata = {"render_modes": []}

    def __init__(self, env: gym.Env) -> None:
        self.env, self.pending = env, None
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def switch(self, env: gym.Env) -> None:
        """Make ``env`` the task from the next episode on."""
        self.pending = env

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if self.pending is not None:
            self.env.close()
            self.env, self.pending = self.pending, None
        return self.env.reset(seed=int(self.np_random.integers(2**31)))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated or self.pending is not None, info

    def close(self) -> None:
        self.env.close()


class _Run(SACRunFolder):
    """The run folder's files, the stop rule and the state saves."""

    def result(self) -> dict[str, Any] | None:
        path = self.dir / "result.json"
        return json.loads(path.read_text()) if path.exists() else None

    def load_or_make(self) -> tuple[Any, float]:
        """(SAC model, wall seconds already spent), resumed from ``state/`` when there; rows
        of ``evals.jsonl`` past the saved step are dropped (they are redone)."""
        from sbx import SAC

        progress = self.state / "progress.json"
        if progress.exists():
            done = json.loads(progress.read_text())
            self.current = self.stage(done["step"])
            env = self.env = StagedEnv(self.stage_env(self.current))
            model = SAC.load(self.state / "model.zip", env=env)
            model.load_replay_buffer(self.state / "replay.pkl")
            if model.num_timesteps != done["step"]:
                raise CTPError(f"{self.state}: model and progress.json disagree (torn save); "
                               "delete the folder to restart the run")
            text = "".join(json.dumps(r) + "\n" for r in self.evals()
                           if r["step"] <= done["step"])
            atomic_write(self.dir / "evals.jsonl", lambda fh: fh.write(text.encode()))
            return model, float(done["seconds"])
        self.current = self.stage(0)
        env = self.env = StagedEnv(self.stage_env(self.current))
        model = SAC("MlpPolicy", env, learning_starts=self.cfg.learning_starts,
                    buffer_size=self.cfg.max_steps, seed=self.cfg.seed, verbose=0)
        return model, 0.0

    def stage(self, step: int) -> str:
        """The curriculum's task from env step ``step`` on: narrow, wide or maze."""
        if step >= self.cfg.maze_from:
            return "maze"
        return "wide" if step >= self.cfg.wide_turns_from else "narrow"

    def stage_env(self, stage: str) -> gym.Env:
        """A fresh env of the curriculum's task ``stage``."""
        cfg = self.cfg
        shaping = {"healthy_reward": cfg.healthy_reward, "ctrl_cost": cfg.ctrl_cost,
                   "body_frame": cfg.body_frame}
        if stage == "maze":
            return MazeSteeringAntEnv(cfg.maze, **shaping)
        turn = cfg.wide_turn_degrees if stage == "wide" else cfg.turn_degrees
        return SteeringAntEnv(turn_range=float(np.radians(turn)), **shaping)

    def final_rows(self) -> list[dict[str, Any]]:
        """The evaluation rows of the maze stage: what the stop rule and the shipped actor
        are chosen from."""
        return [r for r in self.evals() if r["step"] >= self.cfg.maze_from]

    def maze_success(self, actor_path: Path) -> dict[str, float]:
        """The solver + actor's success rate on each of MAZE_EVALS' eval tasks and their
        mean (``maze_eval_episodes`` noiseless episodes each, from VALIDATION_SEED)."""
        from ctp.tasks.antmaze.reference import ExpertConfig, evaluate_expert

        rates = {name: evaluate_expert(ExpertConfig(
            env=f"antmaze-{name}", episodes=self.cfg.maze_eval_episodes, seed=VALIDATION_SEED,
            num_envs=min(10, self.cfg.maze_eval_episodes), actor_path=str(actor_path),
            progress=False))["success_rate"] for name in MAZE_EVALS}
        return {**rates, "success": float(np.mean(list(rates.values())))}

    def should_stop(self, rows: list[dict[str, float]]) -> bool:
        """The stop rule of the module doc, over the evaluation rows so far."""
        cfg = self.cfg
        if not rows:
            return False
        if rows[-1]["step"] >= cfg.max_steps:
            return True
        if rows[-1]["step"] < cfg.min_steps or len(rows) <= cfg.patience:
            return False
        best = [max([r["success"] for r in rows[:i]], default=0.0)
                for i in (len(rows) - cfg.patience, len(rows))]
        return best[1] <= best[0] * (1 + cfg.plateau_gain)

    def on_eval(self, model: Any, seconds: float) -> bool:
        """Evaluate on the task of the steps to come (and switch training to it), checkpoint,
        log; True when the stop rule says stop."""
        step, cfg = model.num_timesteps, self.cfg
        if (stage := self.stage(step)) != self.current:
            self.env.switch(self.stage_env(stage))
            self.current = stage
        actor = export_actor(model)
        ckpt = self.dir / "checkpoints" / f"actor-{step:07d}.pt"
        save_actor(ckpt, actor, {"task": "antmaze-steering", "body_frame": cfg.body_frame,
                                 "seed": cfg.seed, "step": step, "stage": stage})
        if stage == "maze":
            scores = self.maze_success(ckpt)
        else:
            turn = float(np.radians(cfg.wide_turn_degrees if stage == "wide"
                                    else cfg.turn_degrees))
            scores = evaluate_steering(actor, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET,
                                       cfg.body_frame, turn)
        row = {"step": step, "stage": stage, **scores, "seconds": round(seconds, 1)}
        if step % self.cfg.save_every == 0:
            self.save_state(model, seconds)
        with open(self.dir / "evals.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        from ctp.tasks.antmaze.plot import plot_controller_curves

        plot_controller_curves([self.dir], self.dir / "learning-curve.png")
        return self.should_stop(self.final_rows())

    def finish(self) -> dict[str, Any]:
        """Copy the maze stage's best actor (highest mean success; the later one of a tie) to
        ``ant-actor.pt`` and write ``result.json``."""
        rows = self.final_rows()
        if not rows:
            raise CTPError(f"{self.dir}: the run stopped before its maze stage (maze_from "
                           f"{self.cfg.maze_from}); see evals.jsonl")
        best = max(rows, key=lambda r: (r["success"], r["step"]))
        ckpt = self.dir / "checkpoints" / f"actor-{best['step']:07d}.pt"
        target = atomic_write(self.dir / "ant-actor.pt", lambda fh: fh.write(ckpt.read_bytes()))
        result = {"step": best["step"], "success": best["success"],
                  **{name: best[name] for name in MAZE_EVALS},
                  "stopped_at": self.evals()[-1]["step"],
                  "seconds": self.evals()[-1]["seconds"], "actor_path": str(target)}
        write_json(self.dir / "result.json", result)
        return result


def train_ant_policy(cfg: AntPolicyConfig) -> dict[str, Any]:
    """Train SAC until the stop rule holds; resumable after a kill. Returns result.json."""
    os.environ.setdefault("XLA_FLAGS", ONE_THREAD_XLA)  # before JAX's first import
    from tqdm import tqdm

    cfg = cfg.resolved()
    run = _Run(cfg)
    run.dir.mkdir(parents=True, exist_ok=True)
    run.check_config()
    if (result := run.result()) is not None:
        return result
    model, spent = run.load_or_make()
    start = time.perf_counter() - spent
    bar = tqdm(total=cfg.max_steps, initial=model.num_timesteps, unit="step",
               desc="SAC ant controller", disable=not cfg.progress, mininterval=2.0)

    def postfix() -> dict[str, str]:
        row = run.evals()[-1]
        if "success" in row:
            return {"stage": row["stage"], "success": f"{row['success']:.2f}"}
        return {"stage": row["stage"], "speed": f"{row['speed']:.2f}", "falls": str(row["falls"])}

    learn_with_evaluations(model, cfg.max_steps, cfg.eval_every,
                           lambda m: run.on_eval(m, time.perf_counter() - start), bar, postfix)
    return run.finish()
