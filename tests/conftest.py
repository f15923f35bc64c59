"""Test-wide setup: Triton's CPU interpreter and offline hubs, before anything imports them."""

import os

# Must be set before triton is first imported (torch.compile imports it too).
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
# JAX (sbx SAC, the AntMaze controller's trainer): XLA's cheapest compile, one thread. The
# tests' few hundred SAC steps spend most of their time compiling (79 s -> 16 s here).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                      "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

from hypothesis import settings  # noqa: E402

settings.register_profile("ctp", deadline=None, max_examples=200)
settings.load_profile("ctp")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_umaze(tmp_path_factory):
    """A 3000-step umaze dataset in its own Minari folder; yields that folder's path."""
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        from ctp.tasks.pointmaze.generate import GenerateConfig, generate_dataset
        from ctp.tasks.pointmaze.spec import get_maze_spec

        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=3000, progress=False))
    return root


@pytest.fixture
def minari_root(tiny_umaze, monkeypatch):
    """MINARI_DATASETS_PATH pointed at the tiny umaze dataset's folder, for one test."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_umaze))
    return tiny_umaze


@pytest.fixture
def own_root(tmp_path, monkeypatch):
    """MINARI_DATASETS_PATH pointed at an empty folder of this test's own."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def planner_file(tiny_umaze, tmp_path_factory):
    """Teacher, student and critic trained for a few steps, bundled into a planner file."""
    from ctp.planning.bundle import ExportConfig, export_planner
    from ctp.training.config import TrainConfig
    from ctp.training.loop import train

    out = tmp_path_factory.mktemp("planner")
    common = dict(horizon=8, stride=4, dim=16, dim_mults=(1, 2), batch_size=8, steps=3,
                  progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(tiny_umaze))
        teacher = train(TrainConfig(kind="teacher", out_dir=str(out / "t"), **common)).latest
        student = train(TrainConfig(kind="ctm", teacher=str(teacher), out_dir=str(out / "c"),
                                    **common)).latest
        critic = train(TrainConfig(kind="critic", student=str(student), out_dir=str(out / "k"),
                                   **common)).latest
        path = export_planner(ExportConfig(str(student), str(out / "planner.pt"), str(teacher),
                                           str(critic)))
    return {"planner": path, "teacher": teacher, "student": student, "root": tiny_umaze}
