"""The ``ctp`` command: parses arguments and hands them to the library.

Every subcommand lives in ``ctp.commands.<name>`` (the small file tools together in
``ctp.commands.tools``) with ``add_parser(subparsers)`` and ``run(args) -> int``; heavy
imports (torch, minari, mujoco) happen inside ``run`` so that ``ctp --version`` and argument
errors stay instant. A :class:`~ctp.utils.errors.CTPError` (bad input, a failed write)
becomes one line on stderr and exit status 2. SIGINT and SIGTERM stop every command the same
way, here: one line ``ctp: stopped by <SIGNAL>; <what is kept>`` and exit status 128 + the
signal's number (130, 143); a command says what it keeps by raising
:class:`~ctp.utils.errors.Stopped` with it (training saves a checkpoint first).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from ctp import __version__
from ctp.commands import baseline, compare, data, info, plan, recipe, tools, train
from ctp.utils.errors import CTPError, Stopped

COMMANDS = (data, train, tools, recipe, plan, compare, baseline, info)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# What a stopped command leaves unless it says otherwise: outputs are written whole, at the end.
NOTHING_WRITTEN = "no output was written"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``ctp: error: ...`` for every subcommand
    too (the hint names the subcommand's help), and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"ctp: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> OneLineParser:
    """The full ``ctp`` argument parser with every subcommand registered."""
    parser = OneLineParser(
        prog="ctp",
        description="Consistency Trajectory Planning: train on offline data, plan in one step.",
    )
    parser.add_argument("--version", action="version", version=f"ctp {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    for command in COMMANDS:
        command.add_parser(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"  # every command, in registration order
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctp`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if threading.current_thread() is not threading.main_thread():  # no signals there
        return _run(args)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
    try:
        return _run(args)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_stopped(signum: int, frame: object) -> None:
    """Stop the command; a second signal while it cleans up (a double Ctrl-C) is ignored."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def _run(args: argparse.Namespace) -> int:
    """Run the command; its failures as one line and an exit status."""
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # `ctp ... | head`: the reader is gone; stop quietly, as a tool killed by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except CTPError as exc:
        _close_progress_bars()
        print(f"ctp: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system refused outside ctp.utils.atomic (an append-only log)
        _close_progress_bars()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ctp: error: {(exc.strerror or str(exc)).lower()}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Stopped, or Python's own Ctrl-C (not the main thread)
        _close_progress_bars()
        stop = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        print(f"ctp: stopped by {stop.name}; {stop.kept or NOTHING_WRITTEN}", file=sys.stderr)
        return 128 + stop.signum


def _close_progress_bars() -> None:
    """Close the progress bars a failed or stopped command left open, so that they print
    their last state before its one line, not after it (when collected)."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
