"""The README results table, regenerated from the shipped planners with one command.

Rows: every maze with a bundled planner, single-task and Multi2D. Columns: CTP with 1 and 2
jumps and the EDM teacher with 18 Heun levels (each cell: ``d4rl_normalized`` mean +- SE and
plan latency p50 for one environment), the noiseless expert on our data, and the published
Diffuser and Hierarchical Diffuser figures (on D4RL's data).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctp.envs.expert import WaypointExpert
from ctp.envs.maze import MazeGeometry, make_env
from ctp.envs.specs import MAZES, MazeSpec
from ctp.evaluate import EvalConfig, evaluate, mean_se, normalized
from ctp.planning.bundle import bundled_planner_path, load_planner_file
from ctp.planning.planner import Planner, defaults_of

# Published on D4RL's maze2d-v1 data (DESIGN.md section 7).
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
LATENCY_EPISODES = 3


@dataclass
class TableConfig:
    episodes: int = 100
    seed: int = 0
    batch_envs: int = 10  # envs per call for the slow (EDM) cells; latency is measured at 1
    progress: bool = True


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


def _cell(spec: MazeSpec, cfg: TableConfig, overrides: dict, multi_goal: bool) -> dict:
    path = str(bundled_planner_path(spec.env_name))
    payload = load_planner_file(path)
    planner = dataclasses.replace(defaults_of(payload), **overrides)
    replan = (payload.get("defaults") or {}).get("replan")
    slow = overrides["sampler"] == "edm"
    base = EvalConfig(env=spec.env_name, checkpoint=path, episodes=cfg.episodes, seed=cfg.seed,
                      multi_goal=multi_goal, replan=replan, planner=planner,
                      num_envs=cfg.batch_envs if slow else 1, progress=cfg.progress)
    model = Planner(payload, planner, source=path)  # loaded once for both runs
    result = evaluate(base, model)
    if slow:  # latency for one environment, like the other cells
        latency = evaluate(dataclasses.replace(base, episodes=LATENCY_EPISODES, num_envs=1,
                                               progress=False), model)["latency_ms"]
    else:
        latency = result["latency_ms"]
    return {"d4rl_normalized": result["d4rl_normalized"], "normalized": result["normalized"],
            "success_rate": result["success_rate"], "latency_ms": latency,
            "nfe": result["nfe"], "candidates": result["candidates"]}


def build_table(cfg: TableConfig) -> dict[str, Any]:
    """Evaluate every cell; returns the JSON document the Markdown is rendered from."""
    rows = []
    for spec in MAZES.values():
        if not bundled_planner_path(spec.env_name).exists():
            continue
        for multi_goal in (False, True):
            row = {"env": spec.env_name, "task": "multi2d" if multi_goal else "single-task",
                   "cells": {name: _cell(spec, cfg, o, multi_goal) for name, o in COLUMNS.items()},
                   "expert": expert_score(spec, cfg.episodes, cfg.seed, multi_goal),
                   "published": {k: v[1 if multi_goal else 0]
                                 for k, v in PUBLISHED[spec.name].items()}}
            rows.append(row)
    return {"episodes": cfg.episodes, "seeds": [cfg.seed, cfg.seed + cfg.episodes - 1],
            "rows": rows}


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
            f"({c['latency_ms']['p50']:.1f} ms)"
            for c in (row["cells"][n] for n in names)
        ]
        expert = f"{row['expert']['mean']:.1f} +- {row['expert']['se']:.1f}"
        pub = [f"{row['published'][p]:.1f}" if row["published"][p] else "-" for p in published]
        lines.append("| " + " | ".join([row["env"], row["task"], *cells, expert, *pub]) + " |")
    lines.append("")
    lines.append(f"{table['episodes']} episodes per cell (seeds {table['seeds'][0]}.."
                 f"{table['seeds'][1]}); d4rl_normalized mean +- standard error; plan latency "
                 "median for one environment.")
    return "\n".join(lines) + "\n"
