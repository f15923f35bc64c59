"""Test-wide setup: Triton's CPU interpreter and offline hubs, before anything imports them."""

import os

# Must be set before triton is first imported (torch.compile imports it too).
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

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
        from ctp.data.generate import GenerateConfig, generate_dataset
        from ctp.envs.specs import get_maze_spec

        generate_dataset(GenerateConfig(get_maze_spec("umaze"), steps=3000, progress=False))
    return root
