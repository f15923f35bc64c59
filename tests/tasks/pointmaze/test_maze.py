"""Maze specs, geometry against Gymnasium-Robotics' own maze, BFS and the waypoint expert."""

import numpy as np
import pytest

from ctp.tasks.maze_grid import MazeGeometry
from ctp.tasks.pointmaze.expert import WaypointExpert
from ctp.tasks.pointmaze.maze import make_env, make_vector_env
from ctp.tasks.pointmaze.spec import GOAL_RADIUS, MAZES, get_maze_spec, maze_for_dataset
from ctp.utils.errors import CTPError

NAMES = list(MAZES)
STEPS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def test_all_three_mazes_are_registered() -> None:
    assert NAMES == ["umaze", "medium", "large"]
    for name, spec in MAZES.items():
        assert spec.name == name
        assert spec.env_name == f"pointmaze-{name}"
        assert spec.dataset_id == f"ctp/pointmaze/{name}-v1"
        grid = np.array(spec.layout)
        # Closed by walls on every side, so BFS never leaves the grid.
        assert grid[0].all() and grid[-1].all() and grid[:, 0].all() and grid[:, -1].all()


@pytest.mark.parametrize("name", NAMES)
def test_geometry_matches_gymnasium_robotics(name: str) -> None:
    spec = get_maze_spec(name)
    env = make_env(spec)
    try:
        maze = env.unwrapped.maze
        geometry = MazeGeometry(spec.layout)
        assert (geometry.rows, geometry.cols) == (maze.map_length, maze.map_width)
        free = geometry.free_cells()
        assert len(free) == int((np.array(spec.layout) == 0).sum()) > 0
        assert len(free) + len(geometry.wall_cells()) == geometry.rows * geometry.cols
        # Batched conversion agrees with cell-by-cell conversion.
        batch_xy = geometry.cell_to_xy(free)
        assert batch_xy.shape == (len(free), 2)
        offsets = [np.array(o) for o in ((0.0, 0.0), (0.4, 0.4), (-0.4, -0.4), (0.4, -0.4),
                                         (-0.4, 0.4), (0.49, -0.49))]
        for cell, xy in zip(free, batch_xy):
            np.testing.assert_allclose(xy, maze.cell_rowcol_to_xy(cell), atol=1e-12)
            np.testing.assert_allclose(geometry.cell_to_xy(cell), xy)
            for offset in offsets:
                point = xy + offset
                ours = geometry.xy_to_cell(point)
                assert ours.dtype.kind == "i"
                assert tuple(ours) == tuple(maze.cell_xy_to_rowcol(point)) == tuple(cell)
        np.testing.assert_array_equal(geometry.xy_to_cell(batch_xy), free)
    finally:
        env.close()


@pytest.mark.parametrize("name", NAMES)
def test_bfs_distances(name: str) -> None:
    spec = get_maze_spec(name)
    geometry = MazeGeometry(spec.layout)
    free = {tuple(int(v) for v in c) for c in geometry.free_cells()}
    goals = [spec.eval_goal_cell, min(free), max(free)]
    for goal in goals:
        dist = geometry.distances_to(goal)
        assert dist.shape == (geometry.rows, geometry.cols)
        assert dist[goal] == 0
        walls = np.array(spec.layout) == 1
        assert np.all(dist[walls] == -1)
        # The mazes are connected: only the goal is at 0, every free cell is reached.
        assert np.all(dist[~walls] >= 0)
        assert int((dist == 0).sum()) == 1
        for r, c in free:
            neighbours = [(r + dr, c + dc) for dr, dc in STEPS if (r + dr, c + dc) in free]
            # Free neighbours differ by exactly one step (the grid graph is bipartite) ...
            assert all(abs(dist[n] - dist[r, c]) == 1 for n in neighbours)
            if (r, c) == goal:
                assert geometry.next_cell(goal, dist) == goal
                continue
            # ... and every non-goal cell has a neighbour one step closer.
            nxt = geometry.next_cell((r, c), dist)
            assert nxt in neighbours and dist[nxt] == dist[r, c] - 1


def test_bfs_known_values_umaze() -> None:
    geometry = MazeGeometry(get_maze_spec("umaze").layout)
    dist = geometry.distances_to((1, 1))
    expected = np.array(
        [
            [-1, -1, -1, -1, -1],
            [-1, 0, 1, 2, -1],
            [-1, -1, -1, 3, -1],
            [-1, 6, 5, 4, -1],
            [-1, -1, -1, -1, -1],
        ]
    )
    np.testing.assert_array_equal(dist, expected)


def run_expert(name: str, jitter: bool, episodes: int = 20) -> int:
    spec = get_maze_spec(name)
    env = make_env(spec, eval_goal=True)
    geometry = MazeGeometry(spec.layout)
    successes = 0
    try:
        for seed in range(episodes):
            obs, _ = env.reset(seed=seed)
            expert = WaypointExpert(geometry, np.random.default_rng(seed), jitter=jitter)
            for _ in range(spec.episode_steps):
                action = expert.act(obs)
                assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
                obs, _, terminated, truncated, info = env.step(action)
                if info["success"]:
                    assert np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) <= GOAL_RADIUS
                    successes += 1
                    break
                if terminated or truncated:
                    break
    finally:
        env.close()
    return successes


@pytest.mark.parametrize("jitter", [False, True], ids=["exact", "jitter"])
@pytest.mark.parametrize("name", NAMES)
def test_expert_reaches_the_eval_goal(name: str, jitter: bool) -> None:
    assert run_expert(name, jitter) >= 19  # >= 95% of 20 episodes


def test_expert_replans_when_the_goal_moves() -> None:
    spec = get_maze_spec("umaze")
    geometry = MazeGeometry(spec.layout)
    expert = WaypointExpert(geometry, np.random.default_rng(0), jitter=False)
    start = geometry.cell_to_xy(np.array([3, 1]))
    obs = {"observation": np.r_[start, 0.0, 0.0], "achieved_goal": start,
           "desired_goal": geometry.cell_to_xy(np.array([1, 1]))}
    # From (3, 1) towards (1, 1) the only way is right: +x, no y push at the centre.
    action = expert.act(obs)
    assert action[0] == pytest.approx(1.0) and action[1] == pytest.approx(0.0)
    # A new goal two cells to the right, (3, 3): replanned, still to the right.
    obs["desired_goal"] = geometry.cell_to_xy(np.array([3, 3]))
    action = expert.act(obs)
    assert action[0] == pytest.approx(1.0) and action[1] == pytest.approx(0.0)
    # A goal in the point's own cell: head straight at it (exact goal, PD control).
    goal = start + np.array([0.05, 0.02])
    obs["desired_goal"] = goal
    action = expert.act(obs)
    np.testing.assert_allclose(action, 10.0 * (goal - start))


def test_pd_action_is_unclipped_and_act_clips_it() -> None:
    spec = get_maze_spec("umaze")
    geometry = MazeGeometry(spec.layout)
    expert = WaypointExpert(geometry, np.random.default_rng(0), jitter=False)
    start = geometry.cell_to_xy(np.array([3, 1]))
    obs = {"observation": np.r_[start, 0.5, -0.25], "achieved_goal": start,
           "desired_goal": geometry.cell_to_xy(np.array([1, 1]))}
    raw = expert.pd_action(obs)
    # The first waypoint is the next cell's centre (3, 2), one unit to the right.
    np.testing.assert_allclose(raw, [10.0 * 1.0 - 0.5, 0.25])
    np.testing.assert_allclose(expert.act(obs), np.clip(raw, -1.0, 1.0))


def test_jittered_waypoints_stay_in_their_cells() -> None:
    spec = get_maze_spec("large")
    geometry = MazeGeometry(spec.layout)
    expert = WaypointExpert(geometry, np.random.default_rng(5), jitter=True)
    xy = geometry.cell_to_xy(np.array([1, 1]))
    goal = geometry.cell_to_xy(np.array(spec.eval_goal_cell))
    obs = {"observation": np.r_[xy, 0.0, 0.0], "achieved_goal": xy, "desired_goal": goal}
    dist = geometry.distances_to(spec.eval_goal_cell)
    cell, seen = (1, 1), 0
    # Teleport the point onto each waypoint in turn: the expert walks the BFS path.
    while dist[cell] > 0:
        expert.pd_action(obs)
        target = expert.path.waypoint
        nxt = geometry.next_cell(cell, dist)
        assert tuple(geometry.xy_to_cell(target)) == nxt
        offset = geometry.cell_to_xy(np.array(nxt)) - target
        if seen == 0 or nxt == spec.eval_goal_cell:
            assert np.allclose(offset, 0.0) or nxt == spec.eval_goal_cell
        else:
            assert np.all((offset >= 0.0) & (offset < 0.2))
        obs = {**obs, "observation": np.r_[target, 0.0, 0.0], "achieved_goal": target}
        cell, seen = nxt, seen + 1
    np.testing.assert_allclose(expert.path.waypoint, goal)
    assert seen == dist[1, 1]


def test_spec_lookup() -> None:
    assert get_maze_spec("umaze") is get_maze_spec("pointmaze-umaze") is MAZES["umaze"]
    assert get_maze_spec("pointmaze-medium").name == "medium"
    assert get_maze_spec("large").gym_id == "PointMaze_Large-v3"
    with pytest.raises(CTPError) as info:
        get_maze_spec("pointmaze-foo")
    message = str(info.value)
    assert "pointmaze-foo" in message
    for name in ("pointmaze-umaze", "pointmaze-medium", "pointmaze-large"):
        assert name in message
    with pytest.raises(CTPError):
        get_maze_spec("")


@pytest.mark.parametrize("name", NAMES)
def test_eval_map_marks_one_free_goal_cell(name: str) -> None:
    spec = get_maze_spec(name)
    eval_map = spec.eval_map()
    goals = [(r, c) for r, row in enumerate(eval_map) for c, v in enumerate(row) if v == "g"]
    assert goals == [spec.eval_goal_cell]
    r, c = spec.eval_goal_cell
    assert spec.layout[r][c] == 0
    # Every other cell is the layout unchanged, and the layout itself is not modified.
    for i, row in enumerate(eval_map):
        for j, v in enumerate(row):
            if (i, j) != (r, c):
                assert v == spec.layout[i][j]
    eval_map[0][0] = "x"
    assert spec.eval_map()[0][0] == 1


@pytest.mark.parametrize("name", ["umaze", "medium"])
def test_eval_env_goal_is_fixed_and_multi_goal_varies(name: str) -> None:
    spec = get_maze_spec(name)
    geometry = MazeGeometry(spec.layout)
    fixed = make_env(spec, eval_goal=True)
    free = make_env(spec, eval_goal=False)
    try:
        goal_cells = {
            tuple(int(v) for v in geometry.xy_to_cell(fixed.reset(seed=s)[0]["desired_goal"]))
            for s in range(6)
        }
        assert goal_cells == {spec.eval_goal_cell}
        multi = {
            tuple(int(v) for v in geometry.xy_to_cell(free.reset(seed=s)[0]["desired_goal"]))
            for s in range(10)
        }
        assert len(multi) > 1
        assert fixed.spec.max_episode_steps == spec.episode_steps
    finally:
        fixed.close()
        free.close()


@pytest.mark.parametrize(
    ("dataset_id", "name"),
    [
        ("D4RL/pointmaze/medium-v2", "medium"),
        ("D4RL/pointmaze/umaze-v2", "umaze"),
        ("D4RL/pointmaze/large-dense-v2", "large"),
        ("ctp/pointmaze/large-v1", "large"),
        ("ctp/pointmaze/umaze-v1", "umaze"),
    ],
)
def test_maze_for_dataset(dataset_id: str, name: str) -> None:
    assert maze_for_dataset(dataset_id) is MAZES[name]


@pytest.mark.parametrize(
    "dataset_id", ["D4RL/antmaze/umaze-v1", "D4RL/pointmaze/open-v2", "ctp/pointmaze/huge-v1"]
)
def test_maze_for_dataset_rejects_other_ids(dataset_id: str) -> None:
    with pytest.raises(CTPError, match="not a PointMaze"):
        maze_for_dataset(dataset_id)


@pytest.mark.parametrize("name", ["umaze", "medium"])
def test_eval_env_resets_anywhere_but_the_goal_cell(name: str) -> None:
    spec = get_maze_spec(name)
    geometry = MazeGeometry(spec.layout)
    cells = spec.eval_reset_cells()
    assert spec.eval_goal_cell not in cells
    assert len(cells) == len(geometry.free_cells()) - 1
    env = make_env(spec, eval_goal=True)
    try:
        starts = {
            tuple(int(v) for v in geometry.xy_to_cell(env.reset(seed=s)[0]["achieved_goal"]))
            for s in range(120)
        }
    finally:
        env.close()
    assert starts <= set(cells)
    if name == "umaze":
        assert starts == set(cells)  # 5 cells, 120 resets: all of them


def test_vector_env_batches_eval_envs() -> None:
    spec = get_maze_spec("umaze")
    envs = make_vector_env(spec, 3)
    try:
        obs, _ = envs.reset(seed=[0, 1, 2])
        assert obs["observation"].shape == (3, 4)
        assert obs["achieved_goal"].shape == obs["desired_goal"].shape == (3, 2)
        geometry = MazeGeometry(spec.layout)
        assert {tuple(c) for c in geometry.xy_to_cell(obs["desired_goal"])} == {
            spec.eval_goal_cell
        }
        assert len({tuple(x) for x in obs["achieved_goal"].round(6)}) == 3  # own seeds
        obs, reward, terminated, truncated, _ = envs.step(np.zeros((3, 2)))
        assert reward.shape == terminated.shape == truncated.shape == (3,)
    finally:
        envs.close()
    with pytest.raises(CTPError, match="num_envs"):
        make_vector_env(spec, 0)
