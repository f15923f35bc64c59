"""What each supported maze is: env id, layouts, episode length, goal, reference constants.

Layouts are Gymnasium-Robotics' maps (``ctp.tasks.maze_grid``), cells indexed (row, col) from
the top left.

Single-task evaluation follows the maps Minari's D4RL PointMaze datasets were scored on
(Farama-Foundation/minari-dataset-generation-scripts, the pointmaze creation script,
``EVAL_ENV_MAPS``, "single-goal multi-reset location maps"): one goal cell ``g`` per maze,
umaze (1, 1), medium (6, 6), large (7, 9), and no ``r`` cell, so Gymnasium-Robotics resets the
point in a random free cell other than the goal cell (plus its +-0.25 position noise); the goal
also gets that noise. These are D4RL's maze2d targets (``d4rl/pointmaze/maze_model.py``: the
``G`` of U_MAZE, MEDIUM_MAZE, LARGE_MAZE, whose reset is likewise any free cell) in
Gymnasium-Robotics' (row, col) cells. D4RL's maze2d-v1 reference constants are listed in
docs/design.md section 6.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctp.tasks.maze_grid import LARGE_MAZE, MEDIUM_MAZE, U_MAZE
from ctp.utils.errors import CTPError

GOAL_RADIUS = 0.45  # Gymnasium-Robotics' success radius (D4RL used 0.5)
GOAL_DIMS = 2  # the goal is a position (x, y)
ENV_DT = 0.01  # PointMaze's MuJoCo step (positions move by dt * velocity)

@dataclass(frozen=True)
class MazeSpec:
    """One PointMaze task: layout, evaluation goal and the constants scores are built on."""

    name: str
    gym_id: str
    layout: tuple[tuple[int, ...], ...]
    episode_steps: int
    eval_goal_cell: tuple[int, int]  # (row, col) of the single-task goal
    d4rl_ref_min: float
    d4rl_ref_max: float

    @property
    def env_name(self) -> str:
        """The name used on the command line, e.g. ``pointmaze-umaze``."""
        return f"pointmaze-{self.name}"

    @property
    def dataset_id(self) -> str:
        """The Minari id of the dataset ``ctp data generate`` writes for this maze."""
        return f"ctp/pointmaze/{self.name}-v1"

    def eval_reset_cells(self) -> tuple[tuple[int, int], ...]:
        """Cells (row, col) the single-task eval env resets in: every free cell but the goal's."""
        return tuple(
            (r, c)
            for r, row in enumerate(self.layout)
            for c, v in enumerate(row)
            if v == 0 and (r, c) != self.eval_goal_cell
        )

    def eval_map(self) -> list[list[int | str]]:
        """The layout with the single-task goal cell marked ``"g"`` (Gymnasium-Robotics map)."""
        rows: list[list[int | str]] = [list(row) for row in self.layout]
        r, c = self.eval_goal_cell
        rows[r][c] = "g"
        return rows


MAZES: dict[str, MazeSpec] = {
    spec.name: spec
    for spec in (
        MazeSpec("umaze", "PointMaze_UMaze-v3", U_MAZE, 300, (1, 1), 23.85, 161.86),
        MazeSpec("medium", "PointMaze_Medium-v3", MEDIUM_MAZE, 600, (6, 6), 13.13, 277.39),
        MazeSpec("large", "PointMaze_Large-v3", LARGE_MAZE, 800, (7, 9), 6.7, 273.99),
    )
}


# The names ``ctp data generate`` takes for the mazes.
DATASET_NAMES = tuple(f"pointmaze-{name}" for name in MAZES)


def get_maze_spec(name: str) -> MazeSpec:
    """The spec for ``umaze``/``medium``/``large`` (``pointmaze-`` prefix optional)."""
    key = name.removeprefix("pointmaze-")
    if key not in MAZES:
        valid = ", ".join(spec.env_name for spec in MAZES.values())
        raise CTPError(f"unknown maze {name!r}: expected one of {valid}")
    return MAZES[key]


def maze_for_dataset(dataset_id: str) -> MazeSpec:
    """The maze a PointMaze dataset id refers to (``ctp/pointmaze/umaze-v1``, ``D4RL/...``)."""
    parts = dataset_id.split("/")
    tail = parts[-1]
    if not any("pointmaze" in part for part in parts):
        raise CTPError(f"{dataset_id}: not a PointMaze U-Maze/Medium/Large dataset id")
    for spec in MAZES.values():
        if tail.startswith(f"{spec.name}-") or tail.startswith(f"pointmaze-{spec.name}-"):
            return spec
    raise CTPError(f"{dataset_id}: not a PointMaze U-Maze/Medium/Large dataset id")
