"""Maze specs, geometry against Gymnasium-Robotics, and the waypoint expert."""

import numpy as np
import pytest

from ctp.envs.expert import WaypointExpert
from ctp.envs.maze import MazeGeometry, make_env
from ctp.envs.specs import MAZES, get_maze_spec, maze_for_dataset
from ctp.errors import CTPError


@pytest.mark.parametrize("name", list(MAZES))
def test_geometry_matches_gymnasium_robotics(name: str) -> None:
    spec = get_maze_spec(name)
    env = make_env(spec)
    maze = env.unwrapped.maze
    geometry = MazeGeometry(spec.layout)
    for cell in geometry.free_cells():
        np.testing.assert_allclose(geometry.cell_to_xy(cell), maze.cell_rowcol_to_xy(cell))
        xy = geometry.cell_to_xy(cell) + np.array([0.3, -0.3])
        assert tuple(geometry.xy_to_cell(xy)) == tuple(maze.cell_xy_to_rowcol(xy))
    env.close()


def test_bfs_distances() -> None:
    geometry = MazeGeometry(get_maze_spec("umaze").layout)
    dist = geometry.distances_to((1, 1))
    assert dist[1, 1] == 0 and dist[3, 1] == 6 and dist[0, 0] == -1
    for r, c in geometry.free_cells():
        if (r, c) != (1, 1):
            nr, nc = geometry.next_cell((r, c), dist)
            assert dist[nr, nc] == dist[r, c] - 1 and abs(nr - r) + abs(nc - c) == 1


@pytest.mark.parametrize("jitter", [False, True])
@pytest.mark.parametrize("name", list(MAZES))
def test_expert_reaches_goal(name: str, jitter: bool) -> None:
    spec = get_maze_spec(name)
    env = make_env(spec, eval_goal=True)
    geometry = MazeGeometry(spec.layout)
    successes = 0
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        expert = WaypointExpert(geometry, np.random.default_rng(seed), jitter=jitter)
        for _ in range(spec.episode_steps):
            obs, _, _, _, info = env.step(expert.act(obs))
            if info["success"]:
                successes += 1
                break
    env.close()
    assert successes >= 19  # >= 95% of 20 episodes


def test_spec_lookup_and_eval_map() -> None:
    assert get_maze_spec("umaze") is get_maze_spec("pointmaze-umaze")
    with pytest.raises(CTPError, match="pointmaze-umaze, pointmaze-medium, pointmaze-large"):
        get_maze_spec("pointmaze-foo")
    for spec in MAZES.values():
        eval_map = spec.eval_map()
        goals = [(r, c) for r, row in enumerate(eval_map) for c, v in enumerate(row) if v == "g"]
        assert goals == [spec.eval_goal_cell]
        assert spec.layout[spec.eval_goal_cell[0]][spec.eval_goal_cell[1]] == 0
    assert maze_for_dataset("D4RL/pointmaze/medium-v2").name == "medium"
    assert maze_for_dataset("ctp/pointmaze/large-v1").name == "large"
    with pytest.raises(CTPError):
        maze_for_dataset("D4RL/antmaze/umaze-v1")


def test_eval_env_goal_is_fixed_and_multi_goal_varies() -> None:
    spec = get_maze_spec("medium")
    geometry = MazeGeometry(spec.layout)
    fixed = make_env(spec, eval_goal=True)
    free = make_env(spec, eval_goal=False)
    goal_cells = {tuple(geometry.xy_to_cell(fixed.reset(seed=s)[0]["desired_goal"]))
                  for s in range(5)}
    assert goal_cells == {spec.eval_goal_cell}
    multi = {tuple(geometry.xy_to_cell(free.reset(seed=s)[0]["desired_goal"])) for s in range(8)}
    assert len(multi) > 1
