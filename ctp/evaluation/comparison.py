"""Paired comparison of two closed-loop evaluations (``ctp plan --out``) on the same seeds.

An episode seed fixes the start (and, for a maze, the goal), so two planners evaluated on the
same seeds face the same episodes. Their per-seed difference cancels most of the spread
between episodes: its standard error is smaller than either score's, and it decides whether
a new planner beats a shipped one (docs/results.md). Scores are ``d4rl_normalized`` with the
constants both files carry; raw returns are compared too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ctp.utils.errors import CTPError
from ctp.utils.stats import mean_se, normalized

# Entries a `ctp plan --out` result must have, and those two compared results must share.
RESULT_KEYS = ("env", "task", "d4rl_ref_min_score", "d4rl_ref_max_score", "per_episode")
SAME_KEYS = ("env", "task", "d4rl_ref_min_score", "d4rl_ref_max_score")


def load_result(path: str | Path) -> dict[str, Any]:
    """Read one ``ctp plan --out`` JSON file; refuse anything else with a one-line error.

    Every episode must have an integer seed, seen once, and a finite return.
    """
    path = Path(path)
    if not path.is_file():
        raise CTPError(f"{path}: no such file (expected the JSON of 'ctp plan --out')")
    try:
        result = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CTPError(f"{path}: not a JSON file ({exc})") from None
    missing = ([k for k in RESULT_KEYS if k not in result] if isinstance(result, dict)
               else list(RESULT_KEYS))
    if missing:
        raise CTPError(f"{path}: not a 'ctp plan --out' result (no {missing[0]!r} entry)")
    seen: set[int] = set()
    for i, episode in enumerate(result["per_episode"]):
        seed = episode.get("seed") if isinstance(episode, dict) else None
        ret = episode.get("return") if isinstance(episode, dict) else None
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise CTPError(f"{path}: per_episode[{i}] has no integer 'seed'")
        if not isinstance(ret, (int, float)) or not math.isfinite(ret):
            raise CTPError(f"{path}: per_episode[{i}] (seed {seed}) has no finite 'return', "
                           f"got {ret!r}")
        if seed in seen:
            raise CTPError(f"{path}: seed {seed} appears twice in per_episode")
        seen.add(seed)
    return result


def compare_results(base: dict[str, Any], new: dict[str, Any],
                    names: tuple[str, str] = ("base", "new")) -> dict[str, Any]:
    """``new`` against ``base``, paired by episode seed over the seeds both evaluated.

    Returns a JSON-ready dict: each side's mean +- SE over the paired episodes, the paired
    difference ``new - base`` (mean +- SE of the per-seed differences) in ``d4rl_normalized``
    and raw return, how many seeds ``new`` wins, loses and ties, and how many seeds of each
    side had no partner. ``names`` label the two sides in errors (e.g. their file paths).
    """
    for key in SAME_KEYS:
        if base[key] != new[key]:
            raise CTPError(f"{names[1]}: {key} is {new[key]!r} but {base[key]!r} in {names[0]}; "
                           "a paired comparison needs the same env, task and constants")
    returns = [{e["seed"]: float(e["return"]) for e in r["per_episode"]} for r in (base, new)]
    seeds = sorted(returns[0].keys() & returns[1].keys())
    if not seeds:
        raise CTPError(f"{names[0]} and {names[1]} share no episode seed; evaluate both "
                       "with the same --seed and --episodes")
    lo, hi = base["d4rl_ref_min_score"], base["d4rl_ref_max_score"]
    raw = [np.array([side[s] for s in seeds]) for side in returns]
    score = [np.array([normalized(r, lo, hi) for r in side]) for side in raw]
    diff = score[1] - score[0]
    sides = {
        label: {"file": name, "checkpoint": result.get("checkpoint"),
                "d4rl_normalized": mean_se(score[i]), "return": mean_se(raw[i]),
                "unpaired_seeds": len(returns[i]) - len(seeds)}
        for i, (label, name, result) in enumerate(zip(("base", "new"), names, (base, new)))
    }
    return {
        "env": base["env"], "task": base["task"], "episodes": len(seeds),
        "seeds": seeds, **sides,
        "difference": {"d4rl_normalized": mean_se(diff), "return": mean_se(raw[1] - raw[0])},
        "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),
    }


def _seed_range(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}..{seeds[-1]}"
    return f"{len(seeds)} seeds from {seeds[0]} to {seeds[-1]}"


def format_comparison(comparison: dict[str, Any]) -> str:
    """A human-readable table of :func:`compare_results`'s output."""
    def ms(x: dict[str, float], sign: str = "") -> str:
        return f"{x['mean']:{sign}.1f} +- {x['se']:.1f}"

    lines = [f"paired comparison: {comparison['env']} ({comparison['task']}), "
             f"{comparison['episodes']} episodes ({_seed_range(comparison['seeds'])})",
             f"{'':<12}{'d4rl_normalized':>18}{'return':>20}  file"]
    for label in ("base", "new"):
        side = comparison[label]
        lines.append(f"{label:<12}{ms(side['d4rl_normalized']):>18}{ms(side['return']):>20}  "
                     f"{side['file']}")
    d = comparison["difference"]
    lines.append(f"{'new - base':<12}{ms(d['d4rl_normalized'], '+'):>18}"
                 f"{ms(d['return'], '+'):>20}  paired per seed")
    lines.append(f"new wins {comparison['wins']}, loses {comparison['losses']}, ties "
                 f"{comparison['ties']} of {comparison['episodes']} episodes")
    for label in ("base", "new"):
        if comparison[label]["unpaired_seeds"]:
            lines.append(f"{label}: {comparison[label]['unpaired_seeds']} seeds with no partner "
                         "were left out")
    return "\n".join(lines)
