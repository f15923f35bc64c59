"""Pictures of locomotion evaluations: the return of each episode as it accumulates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ctp.utils.atomic import save_figure


def plot_return_curves(episodes: Sequence[Any], path: str, title: str = "",
                       reference: tuple[float, float] | None = None) -> None:
    """Cumulative reward against env step, one line per episode (``ctp.evaluation.evaluate.Episode``
    with per-step ``rewards``); dotted lines at the D4RL random / expert returns when
    ``reference`` is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for ep in episodes:
        rewards = np.asarray(ep.rewards if ep.rewards is not None else [], dtype=float)
        ax.plot(np.arange(1, len(rewards) + 1), np.cumsum(rewards), lw=1.2,
                label=f"seed {ep.seed}: {ep.ret:.0f} ({len(rewards)} steps)")
    if reference is not None:
        for value, name in zip(reference, ("random", "expert"), strict=True):
            ax.axhline(value, ls=":", lw=1, color="0.5")
            ax.text(0.99, value, f"D4RL {name}", fontsize=7, color="0.4", ha="right",
                    va="bottom", transform=ax.get_yaxis_transform())
    ax.set_xlim(left=0)
    ax.set_xlabel("env step")
    ax.set_ylabel("return so far")
    if episodes:
        ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)
