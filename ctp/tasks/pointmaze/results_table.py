"""The README results table, regenerated from the shipped planners with one command.

Rows: every maze with a bundled planner, single-task and Multi2D. Columns: CTP with 1 and 2
jumps and the EDM teacher with 18 Heun levels (each cell: ``d4rl_normalized`` mean +- SE and
plan latency p50 for one environment), the noiseless expert on our data, and the published
Diffuser and Hierarchical Diffuser figures (on D4RL's data). Scores come from batched
rollouts (optionally in worker processes); latencies from separate one-environment episodes
timed while nothing else runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ctp.evaluation.evaluate import EvalConfig, evaluate
from ctp.planning.bundle import bundled_planner_path, load_planner_file
from ctp.planning.config import defaults_of
from ctp.planning.planner import Planner
from ctp.tasks.maze_grid import MazeGeometry
from ctp.tasks.pointmaze.expert import WaypointExpert
from ctp.tasks.pointmaze.maze import make_env
from ctp.tasks.pointmaze.spec import MAZES, MazeSpec, get_maze_spec
from ctp.utils.errors import CTPError
from ctp.utils.stats import mean_se, normalized
from ctp.utils.validation import MAX_SEED, check_options, int_option

# Published on D4RL's maze2d-v1 data (docs/design.md section 7).
PUBLISHED = {
    "umaze": {"Diffuser": (113.9, 128.9), "Hierarchical Diffuser": (128.4, None)},
    "medium": {"Diffuser": (121.5, 127.2), "Hierarchical Diffuser": (135.6, None)},
    "large": {"Diffuser": (123.0, 132.1), "Hierarchical Diffuser": (155.8, None)},
}
COLUMNS = {
    "CTP 1 jump": {"sampler": "ctm", "jumps": 1},
    "CTP 2 jumps": {"sampler": "ctm", "jumps": 2},
    "EDM teacher, 18 Heun": {"sampler": "edm", "edm_steps": 18},
}


@dataclass
class TableConfig:
    episodes: int = 100
    seed: int = 0
    batch_envs: int = 10  # envs stepped and planned for together while scoring
    latency_episodes: int = 3  # one-environment episodes per cell for the latency figure
    mazes: tuple[str, ...] | None = None  # rows to build (default: every shipped planner)
    workers: int = 1  # processes that score cells side by side (one torch thread each)
    progress: bool = True

    def validate(self) -> None:
        check_options([int_option("--episodes", self.episodes),
                       int_option("--seed", self.seed, 0, MAX_SEED),
                       (self.workers >= 1, "--workers", ">= 1", self.workers)])

    def selected(self) -> list[MazeSpec]:
        """The mazes whose rows to build; a named maze must have a shipped planner."""
        if self.mazes is None:
            return [s for s in MAZES.values() if bundled_planner_path(s.env_name).exists()]
        specs = [get_maze_spec(name) for name in self.mazes]
        for spec in specs:
            if not bundled_planner_path(spec.env_name).exists():
                raise CTPError(f"--mazes: no planner is bundled for {spec.env_name}")
        return specs


@dataclass(frozen=True)
class Cell:
    """One evaluation of the table: a maze, a task and a column (or the expert)."""

    env: str
    multi_goal: bool
    column: str  # a key of COLUMNS, or EXPERT


EXPERT = "expert"
COMPILED_COLUMN = "CTP 1 jump"  # its latency is also timed with torch.compile


def expert_score(spec: MazeSpec, episodes: int, seed: int, multi_goal: bool) -> dict:
    """d4rl_normalized of the noiseless waypoint expert on the same episodes."""
    env = make_env(spec, eval_goal=not multi_goal)
    geometry = MazeGeometry(spec.layout)
    returns = []
    for s in range(seed, seed + episodes):
        obs, _ = env.reset(seed=s)
        expert = WaypointExpert(geometry, np.random.default_rng(s), jitter=False)
        total = 0.0
        for _ in range(spec.episode_steps):
            obs, reward, _, _, _ = env.step(expert.act(obs))
            total += reward
        returns.append(total)
    env.close()
    return mean_se([normalized(r, spec.d4rl_ref_min, spec.d4rl_ref_max) for r in returns])


def _eval_config(cell: Cell, cfg: TableConfig, payload: dict, num_envs: int, episodes: int,
                 compile_: bool = False) -> tuple[EvalConfig, Planner]:
    path = str(bundled_planner_path(cell.env))
    planner = dataclasses.replace(defaults_of(payload), **COLUMNS[cell.column], compile=compile_)
    replan = (payload.get("defaults") or {}).get("replan")
    config = EvalConfig(env=cell.env, checkpoint=path, episodes=episodes, seed=cfg.seed,
                        multi_goal=cell.multi_goal, replan=replan, planner=planner,
                        num_envs=num_envs, progress=False)
    return config, Planner(payload, planner, source=path)


def score_cell(cell: Cell, cfg: TableConfig) -> dict[str, Any]:
    """Scores of one cell over ``cfg.episodes`` episodes, ``cfg.batch_envs`` at a time."""
    spec = get_maze_spec(cell.env)
    if cell.column == EXPERT:
        return {"d4rl_normalized": expert_score(spec, cfg.episodes, cfg.seed, cell.multi_goal)}
    payload = load_planner_file(bundled_planner_path(cell.env))
    config, planner = _eval_config(cell, cfg, payload, cfg.batch_envs, cfg.episodes)
    result = evaluate(config, planner)
    return {key: result[key] for key in ("d4rl_normalized", "normalized", "success_rate", "nfe",
                                         "candidates", "horizon", "stride", "replan")}


def latency_of(cell: Cell, cfg: TableConfig, payload: dict,
               compile_: bool = False) -> dict[str, float]:
    """Plan latency (p50/p95 ms) of one cell for one environment, in this process; with
    ``compile_`` of the torch.compiled networks (compiled during the warm-up plans)."""
    config, planner = _eval_config(cell, cfg, payload, 1, cfg.latency_episodes, compile_)
    return evaluate(config, planner)["latency_ms"]


def _score_all(cells: list[Cell], cfg: TableConfig) -> list[dict[str, Any]]:
    """Score every cell, in ``cfg.workers`` single-threaded processes when more than one."""
    from tqdm import tqdm

    bar = tqdm(total=len(cells), desc="results table", unit="cell", disable=not cfg.progress)
    if cfg.workers == 1:
        results = []
        for cell in cells:
            results.append(score_cell(cell, cfg))
            bar.update(1)
        bar.close()
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked copy of a process whose torch already started threads can hang.
    with ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = [pool.submit(score_cell, cell, cfg) for cell in cells]
        for future in futures:
            future.add_done_callback(lambda _: bar.update(1))
        results = [future.result() for future in futures]
    bar.close()
    return results


def build_table(cfg: TableConfig) -> dict[str, Any]:
    """Evaluate every cell; returns the JSON document the Markdown is rendered from.

    Scores first (in worker processes when ``cfg.workers`` > 1), then every latency in this
    process alone, so that no other evaluation shares the CPU while plans are timed.
    """
    cfg.validate()
    specs = cfg.selected()
    tasks = [(spec, multi_goal) for spec in specs for multi_goal in (False, True)]
    cells = [Cell(spec.env_name, multi_goal, column)
             for spec, multi_goal in tasks for column in (*COLUMNS, EXPERT)]
    scores = dict(zip(cells, _score_all(cells, cfg), strict=True))
    payloads = {spec.env_name: load_planner_file(bundled_planner_path(spec.env_name))
                for spec in specs}
    rows = []
    for spec, multi_goal in tasks:
        row_cells = {}
        for column in COLUMNS:
            cell = Cell(spec.env_name, multi_goal, column)
            latency = {"latency_ms": latency_of(cell, cfg, payloads[spec.env_name])}
            if column == COMPILED_COLUMN:
                latency["latency_compiled_ms"] = latency_of(cell, cfg, payloads[spec.env_name],
                                                            compile_=True)
            row_cells[column] = scores[cell] | latency
        rows.append({
            "env": spec.env_name, "task": "multi2d" if multi_goal else "single-task",
            "cells": row_cells,
            "expert": scores[Cell(spec.env_name, multi_goal, EXPERT)]["d4rl_normalized"],
            "published": {k: v[1 if multi_goal else 0] for k, v in PUBLISHED[spec.name].items()},
        })
    return {"episodes": cfg.episodes, "seeds": [cfg.seed, cfg.seed + cfg.episodes - 1],
            "batch_envs": cfg.batch_envs, "latency_episodes": cfg.latency_episodes,
            "torch_threads": torch.get_num_threads(), "rows": rows}


def to_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: ``d4rl_normalized`` mean +- SE (plan latency p50)."""
    names = list(COLUMNS)
    published = ["Diffuser", "Hierarchical Diffuser"]
    head = ["maze", "task", *names, "noiseless expert (ours)",
            *(f"{p} (published, D4RL data)" for p in published)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [
            f"{c['d4rl_normalized']['mean']:.1f} +- {c['d4rl_normalized']['se']:.1f} "
            f"({c['latency_ms']['p50']:.1f} ms"
            + (f"; {c['latency_compiled_ms']['p50']:.1f} ms compiled)"
               if "latency_compiled_ms" in c else ")")
            for c in (row["cells"][n] for n in names)
        ]
        expert = f"{row['expert']['mean']:.1f} +- {row['expert']['se']:.1f}"
        pub = [f"{row['published'][p]:.1f}" if row["published"][p] else "-" for p in published]
        lines.append("| " + " | ".join([row["env"], row["task"], *cells, expert, *pub]) + " |")
    lines.append("")
    lines.append(f"{table['episodes']} episodes per cell (seeds {table['seeds'][0]}.."
                 f"{table['seeds'][1]}); d4rl_normalized mean +- standard error; plan latency "
                 f"median for one environment over {table['latency_episodes']} episodes "
                 f"({table['torch_threads']} torch threads, nothing else running).")
    return "\n".join(lines) + "\n"
