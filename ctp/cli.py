"""The ``ctp`` command: parses arguments and hands them to the library.

Every subcommand lives in ``ctp.commands.<name>`` (the small file tools together in
``ctp.commands.tools``) with ``add_parser(subparsers)`` and ``run(args) -> int``; heavy
imports (torch, minari, mujoco) happen inside ``run`` so that ``ctp --version`` and argument
errors stay instant. A :class:`~ctp.utils.errors.CTPError` becomes one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from ctp import __version__
from ctp.commands import baseline, compare, data, info, plan, recipe, tools, train
from ctp.utils.errors import CTPError

COMMANDS = (data, train, tools, recipe, plan, compare, baseline, info)


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
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # `ctp ... | head`: the reader is gone; stop quietly, as a tool killed by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except CTPError as exc:
        print(f"ctp: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
