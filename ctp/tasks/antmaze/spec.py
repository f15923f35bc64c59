"""What each AntMaze dataset is: maze, env id, data-collection map, evaluation task, constants.

Six datasets on D4RL's names, in Gymnasium-Robotics' ``AntMaze_*-v4`` mazes (D4RL's 27-dim
ant observation, 4 m cells). How their goals are drawn (docs/design.md, "AntMaze"):

- ``umaze``: one fixed start and goal at the two ends of the U, cell (1, 1) to cell (3, 1)
  (D4RL's umaze); reaching the goal starts a new episode at the start cell.
- ``umaze-diverse``, ``medium-diverse``, ``large-diverse``: goals and starts drawn from every
  free cell; a reached goal is replaced by a new one and the ant walks on.
- ``medium-play``, ``large-play``: the ant starts in cell (1, 1) and walks between a fixed set
  of hand-picked goal cells (Gymnasium-Robotics' ``*_DIVERSE_G`` goal cells); a reached goal
  is replaced by another of them.

Evaluation (Minari's D4RL AntMaze eval maps): one reset cell and one goal cell per maze, both
with Gymnasium-Robotics' +-1 m position noise; umaze (1, 3) -> (3, 3) in 700 steps, medium
(1, 1) -> (6, 6) and large (1, 1) -> (7, 9) in 1000. Success is being within 0.45 m of the
goal at some step; the score is 100 x the success rate (D4RL's reference constants 0 / 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ctp.tasks.maze_grid import MAZE_LAYOUTS
from ctp.utils.errors import CTPError

CELL_SIZE = 4.0  # maze_size_scaling of Gymnasium-Robotics' AntMaze
GOAL_RADIUS = 0.45  # Gymnasium-Robotics' success radius
ACTION_NOISE = 0.2  # D4RL's Gaussian action noise of the data-generating controller
REF_MIN_SCORE, REF_MAX_SCORE = 0.0, 1.0  # D4RL's antmaze constants: score = 100 x success
GYM_IDS = {"umaze": "AntMaze_UMaze-v4", "medium": "AntMaze_Medium-v4",
           "large": "AntMaze_Large-v4"}
EVAL_CELLS = {"umaze": ((1, 3), (3, 3)), "medium": ((1, 1), (6, 6)),
              "large": ((1, 1), (7, 9))}  # (reset, goal) of the evaluation task
EPISODE_STEPS = {"umaze": 700, "medium": 1000, "large": 1000}
PLAY_START = (1, 1)
PLAY_GOALS = {
    "medium": ((2, 6), (5, 1), (6, 5)),
    "large": ((1, 6), (3, 5), (3, 10), (5, 2), (7, 4), (7, 6), (7, 9)),
}
UMAZE_START, UMAZE_GOAL = (1, 1), (3, 1)
KINDS = {"umaze": ("", "diverse"), "medium": ("play", "diverse"),
         "large": ("play", "diverse")}


@dataclass(frozen=True)
class AntMazeSpec:
    """One AntMaze dataset and the evaluation task it is scored on."""

    maze: str  # umaze, medium, large
    kind: str  # "" (umaze's fixed goal), play or diverse

    @property
    def name(self) -> str:
        """``umaze``, ``umaze-diverse``, ``medium-play``, ..."""
        return f"{self.maze}-{self.kind}" if self.kind else self.maze

    @property
    def env_name(self) -> str:
        """The name on the command line, e.g. ``antmaze-medium-play``."""
        return f"antmaze-{self.name}"

    @property
    def dataset_id(self) -> str:
        """The Minari id ``ctp data generate`` writes, e.g. ``ctp/antmaze/medium-play-v1``."""
        return f"ctp/antmaze/{self.name}-v1"

    @property
    def gym_id(self) -> str:
        return GYM_IDS[self.maze]

    @property
    def layout(self) -> tuple[tuple[int, ...], ...]:
        return MAZE_LAYOUTS[self.maze]

    @property
    def episode_steps(self) -> int:
        """Env steps of one evaluation episode (700 umaze, 1000 otherwise)."""
        return EPISODE_STEPS[self.maze]

    @property
    def eval_cells(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(reset cell, goal cell) of the evaluation task."""
        return EVAL_CELLS[self.maze]

    @property
    def continuing(self) -> bool:
        """Whether the data is one continuing walk (a reached goal is replaced and the ant
        walks on) rather than episodes restarted at the start cell (umaze)."""
        return bool(self.kind)

    def data_map(self) -> list[list[int | str]]:
        """The Gymnasium-Robotics map the data is collected in: ``r`` / ``g`` cells mark the
        start and goal cells; a plain layout lets every free cell be both."""
        rows: list[list[int | str]] = [list(row) for row in self.layout]
        if self.kind == "diverse":
            return rows
        if self.kind == "play":
            starts, goals = (PLAY_START,), PLAY_GOALS[self.maze]
        else:
            starts, goals = (UMAZE_START,), (UMAZE_GOAL,)
        for r, c in starts:
            rows[r][c] = "r"
        for r, c in goals:
            rows[r][c] = "g"
        return rows

    def eval_map(self) -> list[list[int | str]]:
        """The layout with the evaluation task's reset ``r`` and goal ``g`` cells marked."""
        rows: list[list[int | str]] = [list(row) for row in self.layout]
        (rr, rc), (gr, gc) = self.eval_cells
        rows[rr][rc], rows[gr][gc] = "r", "g"
        return rows


SPECS: dict[str, AntMazeSpec] = {
    spec.name: spec
    for spec in (AntMazeSpec(maze, kind) for maze, kinds in KINDS.items() for kind in kinds)
}
# The names ``ctp data generate`` and ``ctp baseline expert`` take.
DATASET_NAMES = tuple(spec.env_name for spec in SPECS.values())


def get_spec(name: str) -> AntMazeSpec:
    """The spec of ``antmaze-<maze>[-<kind>]`` (the ``antmaze-`` prefix optional); a CTPError
    names an unknown maze or a kind the maze does not have."""
    key = name.removeprefix("antmaze-")
    if key in SPECS:
        return SPECS[key]
    maze, _, kind = key.partition("-")
    if not name.startswith("antmaze-") or maze not in KINDS:
        raise CTPError(f"{name!r}: not an AntMaze dataset; expected one of "
                       f"{', '.join(DATASET_NAMES)}")
    kinds = " or ".join(f"antmaze-{maze}-{k}" if k else f"antmaze-{maze}" for k in KINDS[maze])
    raise CTPError(f"{name!r}: the {maze} maze has no {kind or 'plain'!r} dataset; expected "
                   f"{kinds}")


def spec_for_dataset(dataset_id: str) -> AntMazeSpec:
    """The spec an AntMaze dataset id refers to: ``ctp/antmaze/<name>-v1`` or a public
    ``D4RL/antmaze/<name>-v1`` copy."""
    parts = dataset_id.split("/")
    if len(parts) != 3 or parts[1] != "antmaze" or "-v" not in parts[2]:
        raise CTPError(f"{dataset_id}: not an AntMaze dataset id (expected "
                       "ctp/antmaze/<name>-v1 or D4RL/antmaze/<name>-v1)")
    name = parts[2].rsplit("-v", 1)[0]
    if name not in SPECS:
        raise CTPError(f"{dataset_id}: unknown AntMaze dataset {name!r}; expected one of "
                       f"{', '.join(SPECS)}")
    return SPECS[name]
