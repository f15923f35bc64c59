"""ctp's MuJoCo envs compile their models in the calling thread (``ctp.tasks.mujoco_compile``):
MuJoCo's compiler thread failing to start was what made ``from_xml_path`` raise "Caught an
unknown exception!" in a busy full test run."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import mujoco
import pytest

from ctp.tasks.mujoco_compile import compile_without_thread, models_compiled_in_this_thread


def _hopper_xml() -> Path:
    import gymnasium.envs.mujoco as envs

    return Path(envs.__file__).parent / "assets" / "hopper.xml"


def test_the_model_is_the_same_and_mujocos_loader_comes_back() -> None:
    own = mujoco.MjModel.__dict__["from_xml_path"]
    threaded = mujoco.MjModel.from_xml_path(str(_hopper_xml()))
    with pytest.raises(ValueError, match="boom"), models_compiled_in_this_thread():
        inside = mujoco.MjModel.from_xml_path(str(_hopper_xml()))
        raise ValueError("boom")
    assert mujoco.MjModel.__dict__["from_xml_path"] is own  # put back, also after an error
    for name in ("body_mass", "geom_size", "jnt_range", "actuator_gear", "qpos0"):
        assert (getattr(inside, name) == getattr(threaded, name)).all(), name
    assert compile_without_thread(_hopper_xml()).nq == threaded.nq


# A child process in which no thread can start: a default thread stack (RLIMIT_STACK, read at
# start-up) larger than the machine can commit makes every pthread_create fail. Exit 77 where
# the kernel commits stacks lazily anyway (vm.overcommit_memory = 1): nothing to test there.
NO_THREADS = """
import sys, threading
try:
    threading.Thread(target=lambda: None).start()
except RuntimeError:
    pass
else:
    sys.exit(77)
from ctp.tasks.locomotion.spec import get_task
from ctp.tasks.pointmaze.maze import make_env
from ctp.tasks.pointmaze.spec import get_maze_spec
get_task("hopper").make_env().close()
make_env(get_maze_spec("umaze")).close()
"""


def test_envs_are_made_where_no_thread_can_start() -> None:
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    if hard != resource.RLIM_INFINITY and hard < 1 << 46:
        pytest.skip("the hard stack limit is too low to make thread stacks uncommittable")

    # The limit is set by the shell the child is exec'd from: no preexec_fn, so no fork of
    # this (multithreaded) test process.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "CTP_CHILD": NO_THREADS}
    script = f'ulimit -s {(1 << 46) // 1024} && exec "{sys.executable}" -c "$CTP_CHILD"'
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode == 77:
        pytest.skip("threads start even with huge stacks here (lazy commit)")
    assert proc.returncode == 0, proc.stderr[-2000:]
