"""One speed table: every shipped planner's decision time, one env, measured in one run.

For each planner file in ``ctp/assets`` (its shipped settings: K candidates, 1 jump, its
scorers), one ``Planner.plan`` call from the env's first observation (seed 0) is timed:

- ``ctm``: eager, as ``ctp plan`` runs it;
- ``ctm compiled``: ``--compile`` (frozen weights; compiled in the warm-up rounds);
- ``teacher 18``: the same file's EDM teacher, Heun with 18 levels (35 network evaluations),
  same K and scorers: what the student replaces;
- ``diffuser NFE``: the same teacher at Diffuser's step count (its public maze2d planners take
  256 denoising steps, its locomotion ones 20): Heun with 128 / 10 levels, 255 / 19
  evaluations. Same network, so the ratio counts network evaluations, not Diffuser's own
  (larger) networks.

Medians over ``--rounds`` calls after warm-up; ratios are the slower sampler's median over
the eager student's, all in this one run. Torch runs ``--threads`` threads (default 1).

Run: ``python bench/speed_table.py [--out runs/bench/speed-table.json] [--no-compile]``;
writes the JSON and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctp.planning import load_planner
from ctp.planning.bundle import BUNDLED_DIR, load_planner_file
from ctp.planning.config import PlannerConfig, defaults_of
from ctp.tasks import task_for_env
from ctp.utils.atomic import write_json

# Heun levels: 255 / 19 evaluations. AntMaze takes the maze's 256 steps: Diffuser published no
# AntMaze sampler of its own, and its maze2d one is what a Diffuser-style maze planner runs.
DIFFUSER_LEVELS = {"pointmaze": 128, "locomotion": 10, "antmaze": 128}


def first_observation(env: str) -> tuple[np.ndarray, np.ndarray]:
    """The (state ``[D]``, goal ``[G]``) of ``env``'s first evaluation episode (seed 0)."""
    task = task_for_env(env)
    vec = task.make_vector_env(env, 1, False)
    obs, _ = vec.reset(seed=0)
    vec.close()
    seen = task.observe(obs)
    return seen.state[0], seen.goal[0]


def median_ms(planner: Any, state: np.ndarray, goal: np.ndarray, rounds: int, warmup: int
              ) -> float:
    """Median wall time of ``planner.plan(state, goal)`` in ms, after ``warmup`` calls."""
    for _ in range(warmup):
        planner.plan(state, goal)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        planner.plan(state, goal)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def time_planner(env: str, rounds: int, compiled: bool, path: Path | None = None
                 ) -> dict[str, Any]:
    """One row of the table: the medians (ms) and ratios of ``env``'s shipped planner, or of
    the planner file ``path`` for ``env`` (an older or candidate file, timed in the same run)."""
    label = env if path is None else f"{env} ({path})"
    path = path or BUNDLED_DIR / f"{env}.pt"
    shipped = defaults_of(load_planner_file(path))
    family = task_for_env(env).name
    state, goal = first_observation(env)
    settings: dict[str, PlannerConfig | None] = {
        "ctm": shipped,
        "ctm compiled": dataclasses.replace(shipped, compile=True) if compiled else None,
        "teacher 18": dataclasses.replace(shipped, sampler="edm", edm_steps=18),
        "diffuser NFE": dataclasses.replace(shipped, sampler="edm",
                                            edm_steps=DIFFUSER_LEVELS[family]),
    }
    row: dict[str, Any] = {"env": label, "candidates": shipped.candidates}
    for name, config in settings.items():
        if config is None:
            continue
        planner = load_planner(path, env=env, config=config)
        slow = config.sampler == "edm"
        row[f"{name} ms"] = round(median_ms(planner, state, goal,
                                            max(3, rounds // 10) if slow else rounds,
                                            1 if slow else (3 if not config.compile else 5)), 2)
        row[f"{name} nfe"] = config.nfe
    for name in ("teacher 18", "diffuser NFE"):
        row[f"{name} / ctm"] = round(row[f"{name} ms"] / row["ctm ms"], 1)
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (ms medians and ratios)."""
    cols = [c for c in rows[0] if c != "env"]
    for row in rows[1:]:
        cols += [c for c in row if c not in cols and c != "env"]
    lines = ["| planner | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row['env']} | " + " | ".join(str(row.get(c, "")) for c in cols)
                     + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/bench/speed-table.json")
    parser.add_argument("--rounds", type=int, default=30, help="timed calls per student row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled column")
    parser.add_argument("--env", action="append", help="only these planners (repeatable)")
    parser.add_argument("--planner", action="append", default=[], metavar="ENV=FILE",
                        help="also time this planner file for ENV, in the same run (e.g. the "
                             "previous shipped file; repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shipped = sorted(p.stem for p in BUNDLED_DIR.glob("*.pt"))
    envs = args.env if args.env is not None else shipped
    if unknown := [env for env in envs if env not in shipped]:
        parser.error(f"--env {unknown[0]}: no planner ships for it; expected one of "
                     f"{', '.join(shipped)} (time another file with --planner ENV=FILE)")
    extra = [tuple(item.split("=", 1)) for item in args.planner]
    if any(len(item) != 2 for item in extra):
        parser.error("--planner: expected ENV=FILE")
    rows = []
    for env, path in [(env, None) for env in envs] + [(e, Path(f)) for e, f in extra]:
        rows.append(time_planner(env, args.rounds, not args.no_compile, path))
        print(json.dumps(rows[-1]), flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
               "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out), {"machine": machine, "rows": rows})
    print(markdown(rows))


if __name__ == "__main__":
    main()
