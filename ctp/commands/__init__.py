"""The ``ctp`` subcommands, one module each: ``add_parser(subparsers)`` and ``run(args)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A ``run`` for a command group called without its subcommand: help, exit status 2."""

    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run
