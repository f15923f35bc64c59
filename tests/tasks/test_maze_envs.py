"""Maze envs (``ctp.tasks.maze_grid.make_maze_env``): built by several processes at once, each
gets the maze it asked for; and no MuJoCo XML is left in the temp folder (Gymnasium-Robotics
writes one per env, ``ant_maze<time>.xml``, and never deletes it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

from ctp.tasks.maze_grid import make_maze_env
from ctp.tasks.pointmaze.maze import make_env
from ctp.tasks.pointmaze.spec import get_maze_spec

BUILD = """
import sys
from ctp.tasks.pointmaze.maze import make_env
from ctp.tasks.pointmaze.spec import get_maze_spec
spec = get_maze_spec(sys.argv[1])
geoms = set()
for _ in range(int(sys.argv[2])):
    env = make_env(spec)
    env.reset(seed=0)
    geoms.add(int(env.unwrapped.model.ngeom))
    env.close()
print(sorted(geoms))
"""


def test_two_processes_build_maze_envs_at_once_and_leave_no_xml(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this process's builds too
    geoms = {maze: int(make_env(get_maze_spec(maze)).unwrapped.model.ngeom)
             for maze in ("umaze", "large")}
    assert geoms["umaze"] != geoms["large"]
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    procs = {maze: subprocess.Popen([sys.executable, "-c", BUILD, maze, "20"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for maze in geoms}
    for maze, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert out.strip() == str([geoms[maze]]), (maze, out, err)
    assert not list(tmp_path.glob("ant_maze*.xml"))


def test_an_antmaze_env_runs_without_its_xml(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = make_maze_env("AntMaze_UMaze-v4", continuing_task=True)
    assert not list(tmp_path.glob("ant_maze*.xml"))
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    env.reset(seed=1)
    assert np.isfinite(obs["observation"]).all()
    env.close()
