"""Smoke test of ``bench/speed_table.py`` (the one speed table): one row, no compile."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed_table import markdown, time_planner  # noqa: E402


def test_speed_table_row_and_markdown() -> None:
    row = time_planner("hopper-medium", rounds=1, compiled=False)
    assert row["ctm nfe"] == 1 and row["teacher 18 nfe"] == 35 and row["diffuser NFE nfe"] == 19
    assert row["ctm ms"] > 0 and row["teacher 18 / ctm"] > 1
    table = markdown([row]).splitlines()
    assert table[0].startswith("| planner | candidates | ctm ms") and "hopper-medium" in table[2]


def test_speed_table_times_a_given_file_under_its_path(tmp_path: Path) -> None:
    import shutil

    from ctp.planning.bundle import BUNDLED_DIR

    older = tmp_path / "older.pt"
    shutil.copy(BUNDLED_DIR / "hopper-medium.pt", older)
    row = time_planner("hopper-medium", rounds=1, compiled=False, path=older)
    assert row["env"] == f"hopper-medium ({older})" and row["ctm ms"] > 0


def test_an_env_with_no_shipped_planner_is_a_one_line_error() -> None:
    import subprocess

    script = Path(__file__).resolve().parent / "speed_table.py"
    proc = subprocess.run([sys.executable, str(script), "--env", "antmaze-large-diverse"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--env antmaze-large-diverse: no planner ships for it" in proc.stderr.splitlines()[-1]
