"""Pictures of training runs: loss curves."""

from __future__ import annotations

from collections.abc import Sequence


def plot_training_curves(run_dirs: Sequence[str], path: str) -> None:
    """Loss (and its parts) against step for each run's ``metrics.jsonl``, one panel a run."""
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctp.utils.errors import CTPError

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(4.2 * len(run_dirs), 3.2),
                             squeeze=False)
    for ax, run in zip(axes[0], run_dirs):
        metrics = Path(run) / "metrics.jsonl"
        if not metrics.is_file():
            raise CTPError(f"{metrics}: not found (expected a ctp train output folder)")
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        steps = [r["step"] for r in rows]
        for key in ("loss", "ctm", "dsm"):
            if key in rows[0]:
                ax.plot(steps, [r[key] for r in rows], label=key, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(Path(run).name, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
