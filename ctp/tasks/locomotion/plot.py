"""The picture of SAC behaviour runs: evaluation return over env steps, medium step marked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ctp.tasks.locomotion.spec import get_task
from ctp.utils.atomic import atomic_write
from ctp.utils.errors import CTPError


def read_run(run_dir: str | Path) -> tuple[dict, list[dict], dict | None]:
    """(config, evaluation rows, medium.json or None) of one SAC run folder."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())
        rows = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()
                if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise CTPError(f"{run_dir}: not a readable SAC run folder ({exc})") from None
    medium = run_dir / "medium.json"
    return config, rows, json.loads(medium.read_text()) if medium.exists() else None


def plot_learning_curves(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """One panel per run: D4RL-normalised evaluation return (mean +- SE) vs env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(4.2 * len(run_dirs), 3.2),
                             squeeze=False)
    for ax, run_dir in zip(axes[0], run_dirs):
        config, rows, medium = read_run(run_dir)
        spec = get_task(config["task"])
        steps = [r["step"] / 1e3 for r in rows]
        scores = [r["normalized"] for r in rows]
        scale = 100.0 / (spec.ref_max_score - spec.ref_min_score)
        se = [r["return_se"] * scale for r in rows]
        ax.plot(steps, scores, lw=1.4, color="tab:blue", label="deterministic eval")
        ax.fill_between(steps, [s - e for s, e in zip(scores, se)],
                        [s + e for s, e in zip(scores, se)], color="tab:blue", alpha=0.2)
        ax.axhline(config["target"], ls=":", color="0.4", label=f"target {config['target']:g}")
        checks = [(r["step"] / 1e3, r["stochastic_normalized"]) for r in rows
                  if "stochastic_normalized" in r]
        if checks:
            ax.plot(*zip(*checks), "x", color="tab:orange", label="stochastic check")
        if medium is not None:
            ax.plot(medium["step"] / 1e3, medium["normalized"], "o", color="tab:red",
                    label=f"medium @ {medium['step'] // 1000}k")
        ax.set_title(f"{spec.env_id} SAC, seed {config['seed']}")
        ax.set_xlabel("env steps (k)")
        ax.set_ylabel("D4RL-normalised return")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return path
