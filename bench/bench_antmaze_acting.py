"""Smoke test of ``bench/antmaze_acting.py`` (an action model driven by the solver's
directions): a few steps of an untrained model, the result's fields."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from antmaze_acting import walk  # noqa: E402


def test_walk_reports_success_and_failures() -> None:
    import torch

    from ctp.models.inverse_dynamics import InverseDynamics

    torch.manual_seed(0)
    invdyn = InverseDynamics(29, 8, hidden=(16,), stride=30, target_dims=2, reach=2.0).eval()
    result = walk(invdyn, "antmaze-umaze", ask=2.0, episodes=2, seed=1000)
    assert result["episodes"] == 2 and 0.0 <= result["success_rate"] <= 1.0
    assert len(result["failures"]) + len(result["arrival_steps"]) == 2
    assert all(f["goal_distance_m"] > 0.0 for f in result["failures"])
    json.dumps(result, allow_nan=False)


def test_bad_input_is_one_line() -> None:
    import subprocess

    script = Path(__file__).resolve().parent / "antmaze_acting.py"
    proc = subprocess.run([sys.executable, str(script), "--invdyn", "missing.pt", "--ask", "-1"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "antmaze_acting: error: --ask -1.0 / --episodes 20: expected a distance > 0 m and at "
        "least 1 episode"]
