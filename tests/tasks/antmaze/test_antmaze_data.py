"""AntMaze datasets: specs, the steering task, the SAC ant controller, the maze solver,
generation, the loader (ours and Minari's D4RL layout), the expert reference row, the CLI.

Everything is real and tiny: MuJoCo ants in Gymnasium-Robotics mazes, sbx SAC for a few hundred
steps, Minari datasets written and read back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_main

from ctp.nn.actor import SquashedGaussianActor, save_actor
from ctp.tasks import get_task, task_for_dataset
from ctp.tasks.antmaze.expert import (
    ACTION_SCALE,
    SHIPPED_ACTOR,
    WaypointSolver,
    load_controller,
)
from ctp.tasks.antmaze.generate import GenerateConfig, generate_dataset
from ctp.tasks.antmaze.reference import ExpertConfig, evaluate_expert
from ctp.tasks.antmaze.spec import DATASET_NAMES, SPECS, get_spec, spec_for_dataset
from ctp.tasks.antmaze.steering import SteeringAntEnv, body_direction
from ctp.tasks.maze_grid import MazeGeometry
from ctp.utils.errors import CTPError


@pytest.fixture(scope="module")
def random_actor(tmp_path_factory) -> str:
    """An untrained controller (29 -> 8) saved as a behaviour checkpoint."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("actor") / "actor.pt"
    save_actor(path, SquashedGaussianActor(29, 8).eval(), {"task": "test"})
    return str(path)


def test_specs_names_maps_and_errors() -> None:
    assert DATASET_NAMES == ("antmaze-umaze", "antmaze-umaze-diverse", "antmaze-medium-play",
                             "antmaze-medium-diverse", "antmaze-large-play",
                             "antmaze-large-diverse")
    large = get_spec("antmaze-large-play")
    assert (large.gym_id, large.episode_steps, large.dataset_id) == (
        "AntMaze_Large-v4", 1000, "ctp/antmaze/large-play-v1")
    assert large.eval_map()[1][1] == "r" and large.eval_map()[7][9] == "g"
    play = large.data_map()
    assert play[1][1] == "r" and sum(row.count("g") for row in play) == 7
    assert "r" not in sum(get_spec("medium-diverse").data_map(), [])
    assert get_spec("umaze").eval_cells == ((1, 3), (3, 3))
    assert not get_spec("umaze").continuing and get_spec("umaze-diverse").continuing
    with pytest.raises(CTPError, match="medium maze has no 'plain' dataset"):
        get_spec("antmaze-medium")
    with pytest.raises(CTPError, match="umaze maze has no 'play'"):
        get_spec("antmaze-umaze-play")
    with pytest.raises(CTPError, match="not an AntMaze dataset"):
        get_spec("hopper-medium")
    assert spec_for_dataset("D4RL/antmaze/medium-diverse-v1") is SPECS["medium-diverse"]
    with pytest.raises(CTPError, match="unknown AntMaze dataset"):
        spec_for_dataset("ctp/antmaze/huge-v1")
    assert task_for_dataset("D4RL/antmaze/umaze-v1").name == "antmaze"


def test_steering_reward_is_velocity_along_the_direction() -> None:
    env = SteeringAntEnv(resample_every=5)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (29,) and obs.dtype == np.float32
    assert np.linalg.norm(obs[27:]) == pytest.approx(1.0, abs=1e-6)
    directions = []
    for _ in range(10):
        before, direction = env.ant.data.qpos[:2].copy(), env.direction.copy()
        obs, reward, terminated, _, info = env.step(np.full(8, 0.5))
        moved = env.ant.data.qpos[:2] - before
        assert info["speed_along"] == pytest.approx(moved @ direction / env.ant.dt)
        assert reward == pytest.approx(info["speed_along"] + (not terminated) - 0.5 * 8 * 0.25)
        directions.append(tuple(direction))
    assert len(set(directions)) == 2  # redrawn after 5 steps
    env.close()


def test_steering_directions_start_at_the_heading_and_turn_within_the_range() -> None:
    """Directions start within ``turn_range`` of the torso's heading and each redraw turns by
    at most ``turn_range``; without a range they follow the torso exactly."""
    env = SteeringAntEnv(resample_every=2, body_frame=True, turn_range=0.0)
    obs, _ = env.reset(seed=4)
    assert obs[27:] == pytest.approx([1.0, 0.0], abs=1e-6)  # straight ahead of the torso
    env.close()
    env = SteeringAntEnv(resample_every=2, turn_range=np.radians(45))
    turns = []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        heading = body_direction(obs[:27], np.array([1.0, 0.0]))
        start = np.arctan2(env.direction[1], env.direction[0]) + np.arctan2(heading[1], heading[0])
        assert abs(np.angle(np.exp(1j * start))) <= np.radians(45) + 1e-9
        angles = []
        for _ in range(6):
            angles.append(np.arctan2(env.direction[1], env.direction[0]))
            env.step(np.zeros(8))
        turns += list(np.abs(np.angle(np.exp(1j * np.diff(angles)))))
    turns = np.array(turns)
    assert turns.max() <= np.radians(45) + 1e-9 and turns.max() > np.radians(5)
    env.close()


def test_maze_steering_rewards_speed_along_the_solvers_direction() -> None:
    from ctp.tasks.antmaze.maze_steering import MazeSteeringAntEnv, flipped

    env = MazeSteeringAntEnv("umaze", max_steps=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (29,) and np.linalg.norm(obs[27:]) == pytest.approx(1.0, abs=1e-6)
    for step in range(3):
        before, direction = env._obs["achieved_goal"].copy(), env.direction.copy()
        obs, reward, terminated, truncated, info = env.step(np.full(8, 0.3))
        speed = (env._obs["achieved_goal"] - before) @ direction / 0.05
        assert info["speed_along"] == pytest.approx(speed)
        assert reward == pytest.approx(speed + 1.0 - 0.5 * 8 * 0.09)
        assert not terminated and truncated == (step == 2)
    env.close()
    upright, on_back = np.zeros(27), np.zeros(27)
    upright[:2], on_back[:3] = (0.55, 1.0), (0.3, 0.0, 1.0)  # quaternion (0, 1, 0, 0): 180 deg
    assert not flipped(upright) and flipped(on_back)


def test_solver_walks_a_point_to_every_eval_goal() -> None:
    """Following the solver's directions at 0.3 m a step reaches each maze's goal without
    crossing a wall cell."""
    for name in ("umaze", "medium-play", "large-diverse"):
        spec = get_spec(name)
        geometry = MazeGeometry(spec.layout, 4.0)
        (rr, rc), (gr, gc) = spec.eval_cells
        xy, goal = geometry.cell_to_xy(np.array([rr, rc])), geometry.cell_to_xy(np.array([gr, gc]))
        solver = WaypointSolver(spec, np.random.default_rng(0))
        for _ in range(600):
            xy = xy + 0.3 * solver.direction(xy, goal)
            assert geometry.grid[tuple(geometry.xy_to_cell(xy))] == 0, name
            if np.linalg.norm(xy - goal) <= 0.45:
                break
        assert np.linalg.norm(xy - goal) <= 0.45, name


def test_expert_rounds_corners_and_escapes_when_stuck() -> None:
    """Near a waypoint the direction blends toward the next leg; an ant that has not moved for
    STUCK_STEPS steps walks one random direction for ESCAPE_STEPS steps, then aims again."""
    from ctp.tasks.antmaze import expert as E

    spec = get_spec("umaze")
    geometry = MazeGeometry(spec.layout, 4.0)
    start, goal = geometry.cell_to_xy(np.array([1, 1])), geometry.cell_to_xy(np.array([3, 1]))
    solver = WaypointSolver(spec, np.random.default_rng(0), jitter=False)
    far = solver.direction(start, goal)  # toward the next cell's centre, (1, 2): +x
    np.testing.assert_allclose(far, [1.0, 0.0], atol=1e-9)
    corner = geometry.cell_to_xy(np.array([1, 3])) - [1.5, 0.0]  # 1.5 m before (1, 3)
    solver.path.target(corner, goal)
    for _ in range(2):  # walk the waypoints up to (1, 3), whose next leg goes down (-y)
        solver.path.target(solver.path.waypoint, goal)
    turning = solver.direction(corner, goal)
    assert turning[0] > 0 and turning[1] < 0  # between +x and -y

    seen = []
    expert = E.AntExpert(spec, lambda obs, d: seen.append(d.copy()) or np.zeros((1, 8)), 1,
                         np.random.default_rng(1), jitter=False)
    obs = {"observation": np.zeros((1, 27)), "achieved_goal": start[None],
           "desired_goal": goal[None]}
    for _ in range(E.STUCK_STEPS + E.ESCAPE_STEPS + 1):
        expert.act(obs)
    aims = [np.allclose(d[0], far) for d in seen]
    assert all(aims[:E.STUCK_STEPS - 1]) and not any(aims[E.STUCK_STEPS - 1:-2])
    assert aims[-1]  # aiming again after the escape


def test_generate_load_and_recover_the_eval_env(own_root, random_actor) -> None:
    result = generate_dataset(GenerateConfig(get_spec("umaze"), steps=1500, progress=False,
                                             actor_path=random_actor))
    assert result["steps"] == 1500 and result["episodes"] == 3  # 700 + 700 + 100
    data = get_task("antmaze").load("ctp/antmaze/umaze-v1")
    assert data.observations.shape == (1500, 29) and data.actions.shape == (1500, 8)
    assert data.goals.shape == (1500, 2) and not data.continuous
    assert list(data.episode_starts) == [0, 700, 1400]
    assert np.isfinite(data.observations).all() and np.abs(data.actions).max() <= 1.0
    assert (data.ref_min_score, data.ref_max_score) == (0.0, 1.0)
    import minari

    env = minari.load_dataset("ctp/antmaze/umaze-v1").recover_environment(eval_env=True)
    assert env.spec.id == "AntMaze_UMaze-v4" and env.spec.max_episode_steps == 700
    obs, _ = env.reset(seed=0)
    geometry = MazeGeometry(get_spec("umaze").layout, 4.0)
    assert tuple(geometry.xy_to_cell(obs["achieved_goal"])) == (1, 3)
    assert tuple(geometry.xy_to_cell(obs["desired_goal"])) == (3, 3)
    env.close()
    with pytest.raises(CTPError, match="already exists"):
        generate_dataset(GenerateConfig(get_spec("umaze"), steps=10, progress=False,
                                        actor_path=random_actor))


def test_continuing_kinds_replace_reached_goals(own_root, random_actor) -> None:
    generate_dataset(GenerateConfig(get_spec("medium-diverse"), steps=1200, progress=False,
                                    actor_path=random_actor))
    import minari

    dataset = minari.load_dataset("ctp/antmaze/medium-diverse-v1")
    assert [len(e.actions) for e in dataset.iterate_episodes()] == [1000, 200]  # D4RL's 1000
    data = get_task("antmaze").load("ctp/antmaze/medium-diverse-v1")  # up to the first flips
    assert data.num_steps + data.flipped_steps == 1200 and data.episode_starts[0] == 0


def test_loader_reads_minaris_d4rl_layout(own_root) -> None:
    """A dataset written as Minari's D4RL/antmaze copies are (their id, env and obs dict)."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    from ctp.tasks.maze_grid import register_robotics_envs

    register_robotics_envs()
    env = gym.make("AntMaze_UMaze-v4", continuing_task=True, reset_target=False,
                   max_episode_steps=700)
    obs, _ = env.reset(seed=1)
    env.action_space.seed(1)
    steps, observations, actions = 50, [obs], []
    for _ in range(steps):
        actions.append(0.1 * env.action_space.sample())  # small: the ant must not flip
        observations.append(env.step(actions[-1])[0])
    buffer = EpisodeBuffer(
        id=0, observations={k: np.stack([o[k] for o in observations]) for k in obs},
        actions=np.stack(actions), rewards=np.zeros(steps),
        terminations=np.zeros(steps, bool), truncations=np.eye(1, steps, steps - 1, bool)[0])
    minari.create_dataset_from_buffers(dataset_id="D4RL/antmaze/umaze-v1", env=env,
                                       buffer=[buffer], algorithm_name="test",
                                       ref_min_score=0.0, ref_max_score=1.0)
    env.close()
    data = get_task("antmaze").load("D4RL/antmaze/umaze-v1")
    assert data.observations.shape == (steps, 29)
    np.testing.assert_allclose(data.observations[0, :2], obs["achieved_goal"], rtol=1e-6)
    np.testing.assert_allclose(data.observations[0, 2:], obs["observation"], rtol=1e-6)


def test_loader_cuts_episodes_at_the_ants_first_flip(own_root) -> None:
    """Steps from an episode's first flip on are dropped (an episode flipped from its start
    entirely); the Minari file keeps them."""
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    from ctp.tasks.antmaze.maze_steering import flipped_mask
    from ctp.tasks.maze_grid import register_robotics_envs

    register_robotics_envs()
    env = gym.make("AntMaze_UMaze-v4", continuing_task=True, reset_target=False,
                   max_episode_steps=700)
    steps, buffers = 40, []
    for episode, flip_at in enumerate((25, 0, None)):
        obs, _ = env.reset(seed=episode)
        env.action_space.seed(episode)
        observations, actions = [obs], []
        for _ in range(steps):
            actions.append(0.1 * env.action_space.sample())  # small: no flip of its own
            observations.append(env.step(actions[-1])[0])
        stacked = {k: np.stack([o[k] for o in observations]) for k in obs}
        if flip_at is not None:  # torso upside down: quaternion (0, 1, 0, 0)
            stacked["observation"][flip_at:, 1:5] = (0.0, 1.0, 0.0, 0.0)
        buffers.append(EpisodeBuffer(
            id=episode, observations=stacked, actions=np.stack(actions),
            rewards=np.zeros(steps), terminations=np.zeros(steps, bool),
            truncations=np.eye(1, steps, steps - 1, bool)[0]))
    minari.create_dataset_from_buffers(dataset_id="D4RL/antmaze/umaze-diverse-v1", env=env,
                                       buffer=buffers, algorithm_name="test")
    env.close()
    data = get_task("antmaze").load("D4RL/antmaze/umaze-diverse-v1")
    assert data.num_steps == 25 + steps and data.flipped_steps == (steps - 25) + steps
    assert data.episode_starts.tolist() == [0, 25]
    assert not flipped_mask(data.observations[:, 2:]).any()
    assert data.actions.shape == (65, 8) and data.goals.shape == (65, 2)


def test_missing_dataset_names_the_command(own_root) -> None:
    with pytest.raises(CTPError, match="ctp data generate antmaze-large-play"):
        get_task("antmaze").load("ctp/antmaze/large-play-v1")


def test_expert_reference_row(random_actor) -> None:
    result = evaluate_expert(ExpertConfig("antmaze-umaze", episodes=3, num_envs=2, seed=5,
                                          noise=0.2, actor_path=random_actor, progress=False))
    assert result["seeds"] == [5, 6, 7] and result["episodes"] == 3
    assert {"d4rl_normalized", "success_rate", "latency_ms", "per_episode"} <= set(result)
    scores = [100 * e["return"] for e in result["per_episode"]]
    assert result["d4rl_normalized"]["mean"] == pytest.approx(np.mean(scores))
    assert 0.0 <= result["success_rate"] <= 1.0
    for e in result["per_episode"]:  # held at the arrival, within the goal radius
        assert 0 <= e["closest_distance"] <= e["final_distance"]
        assert (e["final_distance"] <= 0.45) == e["success"]
    finals = sorted(e["final_distance"] for e in result["per_episode"])
    assert result["goal_distance"]["final_median"] == pytest.approx(finals[1])
    assert result["action_scale"] == ACTION_SCALE and result["noise"] == 0.2
    json.dumps(result, allow_nan=False)


def test_controller_scales_the_actors_deterministic_actions(random_actor) -> None:
    obs = np.random.default_rng(0).normal(size=(5, 27))
    obs[:, 1:5] = [1.0, 0.0, 0.0, 0.0]  # an upright torso facing +x
    directions = np.tile([[0.0, 1.0]], (5, 1))
    full = load_controller(random_actor, action_scale=1.0)(obs, directions)
    scaled = load_controller(random_actor, action_scale=0.6)(obs, directions)
    assert np.abs(full).max() > 0.01
    np.testing.assert_allclose(scaled, 0.6 * full, rtol=1e-6)
    assert load_controller(random_actor).action_scale == ACTION_SCALE


@pytest.mark.skipif(not SHIPPED_ACTOR.exists(), reason="the ant controller is not shipped yet")
def test_shipped_controller_reaches_the_umaze_goal() -> None:
    result = evaluate_expert(ExpertConfig("antmaze-umaze", episodes=2, num_envs=2,
                                          progress=False))
    assert result["success_rate"] == 1.0


@pytest.mark.parametrize("argv, message", [
    (["data", "generate", "antmaze-medium"], "no 'plain' dataset"),
    (["data", "generate", "antmaze-umaze-play"], "no 'play' dataset"),
    (["data", "generate", "antmaze-huge-play"], "not an AntMaze dataset"),
    (["data", "generate", "antmaze-umaze", "--run-dir", "x"], "only with --train-policy"),
    (["data", "generate", "pointmaze-umaze", "--train-policy"], "locomotion and AntMaze"),
    (["baseline", "expert", "hopper-medium"], "not an AntMaze dataset"),
    (["baseline", "expert", "antmaze-umaze", "--episodes", "0"], "--episodes"),
    (["baseline", "expert", "antmaze-umaze", "--num-envs", "0"], "--num-envs"),
    (["baseline", "expert", "antmaze-umaze", "--noise", "nan"], "--noise"),
    (["baseline", "expert", "antmaze-umaze", "--seed", "-1"], "--seed"),
    (["baseline", "expert", "antmaze-umaze", "--action-scale", "0"], "--action-scale"),
    (["baseline", "expert", "antmaze-umaze", "--action-scale", "1.5"], "--action-scale"),
])
def test_cli_bad_input_is_one_line(argv, message, own_root, capsys) -> None:
    assert_one_line_error(run_main(capsys, *argv), message)


def _rows(successes):
    return [{"step": 10 * (i + 1), "success": s} for i, s in enumerate(successes)]


def test_controller_stop_rule() -> None:
    from ctp.tasks.antmaze.ant_policy import AntPolicyConfig, _Run

    run = _Run(AntPolicyConfig(run_dir="unused", max_steps=1000, min_steps=30, patience=2,
                               plateau_gain=0.1, wide_turns_from=0, maze_from=0).resolved())
    assert not run.should_stop(_rows([0.1, 0.2]))  # before min_steps
    assert not run.should_stop(_rows([0.1, 0.2, 0.5, 0.9]))  # still improving
    assert run.should_stop(_rows([0.1, 0.6, 0.65, 0.62]))  # under 10% in the last two
    assert run.should_stop(_rows([0.0, 0.0, 0.0, 0.0]))  # nothing learnt: a plateau too
    assert run.should_stop(_rows([0.1] * 99 + [0.2]))  # 1000 = max_steps
    assert run.stage(0) == "maze"
    staged = _Run(AntPolicyConfig(run_dir="unused").resolved())
    assert [staged.stage(s) for s in (0, 249_999, 250_000, 300_000)] == [
        "narrow", "narrow", "wide", "maze"]
    with pytest.raises(CTPError, match="maze_from: expected between wide_turns_from and "
                       "min_steps"):
        AntPolicyConfig(maze_from=500_000).resolved()


def test_controller_trains_resumes_and_exports(tmp_path) -> None:
    """sbx SAC for a few hundred steps: evaluations, checkpoints, a resume after a kill, a
    refused change of settings, and the torch export acting as sbx's actor does."""
    pytest.importorskip("sbx")
    from ctp.tasks.antmaze.ant_policy import AntPolicyConfig, export_actor, train_ant_policy

    torch.set_num_threads(1)
    cfg = AntPolicyConfig(run_dir=str(tmp_path), max_steps=400, min_steps=10_000,
                          eval_every=200, save_every=400, learning_starts=100,
                          eval_episodes=1, wide_turns_from=200, maze_from=400,
                          maze_eval_episodes=1, progress=False)
    first = train_ant_policy(cfg)
    assert first["stopped_at"] == 400 and (tmp_path / "ant-actor.pt").exists()
    assert (tmp_path / "learning-curve.png").stat().st_size > 0
    # A kill after the save at 400: the result is gone, the state is there; a longer budget
    # resumes from step 400.
    (tmp_path / "result.json").unlink()
    (tmp_path / "evals.jsonl").write_text((tmp_path / "evals.jsonl").read_text()
                                          + json.dumps({"step": 500, "speed": 9.0,
                                                        "falls": 0}) + "\n")
    cfg.max_steps = 600
    second = train_ant_policy(cfg)
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "evals.jsonl").read_text().splitlines()]
    assert steps == [200, 400, 600] and second["stopped_at"] == 600
    # The curriculum: 45-degree turns to step 200, any turn to 400, the maze from there on;
    # maze evaluations score the solver + actor on the medium and large eval tasks, and the
    # shipped actor is the best of them.
    rows = [json.loads(line) for line in (tmp_path / "evals.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["wide", "maze", "maze"]
    assert {"medium-play", "large-play", "success"} <= set(rows[-1])
    assert second["step"] in (400, 600) and 0.0 <= second["success"] <= 1.0
    cfg.eval_every = 100
    with pytest.raises(CTPError, match="eval_every=200"):
        train_ant_policy(cfg)
    from sbx import SAC

    model = SAC.load(tmp_path / "state" / "model.zip")
    obs = np.random.default_rng(0).normal(size=(4, 29)).astype(np.float32)
    with torch.no_grad():
        torch_actions = export_actor(model)(torch.from_numpy(obs), deterministic=True).numpy()
    np.testing.assert_allclose(torch_actions, model.predict(obs, deterministic=True)[0],
                               atol=1e-5)


def test_body_frame_turns_the_direction_by_the_torso_yaw() -> None:
    from ctp.tasks.antmaze.steering import body_direction, direction_obs

    obs = np.zeros((2, 27))
    obs[0, 1] = 1.0  # identity quaternion: heading along +x
    obs[1, 1], obs[1, 4] = np.cos(np.pi / 4), np.sin(np.pi / 4)  # yaw 90 degrees: along +y
    world = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(body_direction(obs, world), [[1.0, 0.0], [0.0, -1.0]],
                               atol=1e-12)
    np.testing.assert_allclose(direction_obs(obs, world)[:, 27:], world)
    assert direction_obs(obs, world, body_frame=True).shape == (2, 29)
