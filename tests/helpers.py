"""Helpers shared by the test files: the ``ctp`` command in a subprocess or in this process,
and the one-line error that every bad input must give (``from helpers import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ctp.cli import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"  # the repository's recipes


def _command(args) -> list[str]:
    return [sys.executable, "-m", "ctp", *map(str, args)]


def _env(root: str | Path | None) -> dict[str, str]:
    """This environment, one OpenMP thread, and ``MINARI_DATASETS_PATH=root`` if given."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if root is not None:
        env["MINARI_DATASETS_PATH"] = str(root)
    return env


def run_ctp(*args, root: str | Path | None = None, cwd: str | Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``ctp args`` as a user runs it, in a new process; a traceback fails the test."""
    proc = subprocess.run(_command(args), capture_output=True, text=True, timeout=timeout,
                          env=_env(root), cwd=cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def spawn_ctp(*args, root: str | Path | None = None) -> subprocess.Popen:
    """``ctp args`` started in a new process and left running, stdout and stderr piped."""
    return subprocess.Popen(_command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(root))


def run_main(capsys, *args) -> subprocess.CompletedProcess[str]:
    """``ctp args`` run in this process (faster: no interpreter start, torch already loaded),
    with its exit status (argparse's exits too), stdout and stderr as :func:`run_ctp` gives
    them. An uncaught exception fails the test as a traceback would."""
    capsys.readouterr()  # only this command's output
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors and --help
        status = exc.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), status, out, err)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str,
                          prefix: str = "ctp: error: ") -> None:
    """Exit status 2 and exactly one line on stderr that starts with ``prefix`` and holds
    every fragment."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(prefix), (
        proc.returncode, proc.stderr)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
