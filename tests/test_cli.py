"""The installed `ctp` command: version, info, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from ctp import __version__


def run_ctp(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctp", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_version() -> None:
    proc = run_ctp("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"ctp {__version__}"


def test_info_json_reports_extension_and_backend(tmp_path) -> None:
    proc = run_ctp("info", "--json", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ranking_extension"] == "built"
    assert report["kernel_backend"] in ("torch", "triton")
    assert report["kernel_backend"] == ("triton" if report["cuda_available"] else "torch")
    for name in ("torch", "minari", "gymnasium", "mujoco"):
        assert report["versions"][name], name


def test_info_table() -> None:
    proc = run_ctp("info")
    assert proc.returncode == 0
    assert "ctp._ranking" in proc.stdout and "built" in proc.stdout


@pytest.mark.parametrize(
    "args", [("frobnicate",), ("info", "--no-such-option"), ("--no-such-option",)]
)
def test_bad_usage_is_one_line_exit_2(args: tuple[str, ...]) -> None:
    proc = run_ctp(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ctp"), proc.stderr
    assert "error:" in lines[0] and "Traceback" not in proc.stderr


def test_kernels_installed_only_as_subpackage(tmp_path) -> None:
    code = (
        "import importlib.util, ctp.kernels; "
        "print(importlib.util.find_spec('kernels') is None, ctp.kernels.__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "ctp.kernels"]
