"""The installed `ctp` command: version, info, one-line errors with exit status 2, and the
old spellings that still work for one release."""

import json
import subprocess
import sys

import pytest
from helpers import assert_one_line_error, run_ctp, run_main

from ctp import __version__


def test_version() -> None:
    proc = run_ctp("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"ctp {__version__}"


def test_info_json_reports_extension_and_backend(tmp_path) -> None:
    proc = run_ctp("info", "--json", cwd=tmp_path)
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
    assert_one_line_error(proc, "(see 'ctp --help')")


@pytest.mark.parametrize(("args", "hint"), [
    (("plan", "--episodes", "ten"), "(see 'ctp plan --help')"),
    (("train", "teacher", "--steps", "x"), "(see 'ctp train teacher --help')"),
    (("data", "generate"), "(see 'ctp data generate --help')"),
    (("baseline", "bc", "hopper-medium", "--seed", "x"), "(see 'ctp baseline bc --help')"),
])
def test_subcommand_usage_errors_say_ctp_error_and_name_their_help(capsys, args, hint) -> None:
    assert_one_line_error(run_main(capsys, *args), hint)


def test_usage_lists_every_command(capsys) -> None:
    accepted = run_main(capsys, "frobnicate").stderr.split("choose from ")[1].split(")")[0]
    names = [name.strip(" '") for name in accepted.split(",")]
    usage = " ".join(run_main(capsys, "--help").stdout.split("\n\n")[0].split())
    assert "jump-error" in names and "{" + ",".join(names) + "}" in usage


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


# ---------------------------------------------------- deprecated spellings (one release)

TOOLS = ("pairs", "average", "bundle", "unbundle", "curves")


def options_of(help_text: str, prog: str) -> str:
    """The options in a ``--help`` text's usage lines for ``prog``, whitespace collapsed."""
    usage = help_text.split("\n\n")[0]
    assert usage.startswith(f"usage: {prog} "), usage
    return " ".join(usage.removeprefix(f"usage: {prog} ").split())


@pytest.mark.parametrize("tool", TOOLS)
def test_train_tool_alias_takes_the_tools_options(tool, capsys) -> None:
    new = run_main(capsys, tool, "--help")
    old = run_main(capsys, "train", tool, "--help")
    assert new.returncode == old.returncode == 0
    assert options_of(old.stdout, f"ctp train {tool}") == options_of(new.stdout, f"ctp {tool}")
    assert f"deprecated: use 'ctp {tool}'" in old.stdout


def test_train_help_lists_only_what_trains(capsys) -> None:
    proc = run_main(capsys, "train", "--help")
    assert "{teacher,ctm,critic,value,invdyn,distance}" in proc.stdout
    assert not any(tool in proc.stdout for tool in TOOLS)
    assert all(tool in run_main(capsys, "--help").stdout for tool in TOOLS)


def test_train_tool_alias_runs_the_tool_with_a_one_line_notice(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0}\n')
    proc = run_main(capsys, "train", "curves", run, "--out", tmp_path / "old.png")
    assert proc.returncode == 0 and (tmp_path / "old.png").read_bytes()[:4] == b"\x89PNG"
    assert proc.stderr.splitlines() == [
        "ctp: warning: 'ctp train curves' is deprecated and will be removed in the next "
        "release; use 'ctp curves'"]
    proc = run_main(capsys, "curves", run, "--out", tmp_path / "new.png")
    assert proc.returncode == 0 and proc.stderr == ""
    assert (tmp_path / "new.png").read_bytes()[:4] == b"\x89PNG"
