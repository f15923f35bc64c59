"""Test-wide setup: Triton's CPU interpreter and offline hubs, before anything imports them."""

import os

# Must be set before triton is first imported (torch.compile imports it too).
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from hypothesis import settings  # noqa: E402

settings.register_profile("ctp", deadline=None, max_examples=200)
settings.load_profile("ctp")
