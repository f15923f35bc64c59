"""The ``ctp`` subcommands, one module each: ``add_parser(subparsers)`` and ``run(args)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ctp.errors import CTPError


def print_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A ``run`` for a command group called without its subcommand: help, exit status 2."""

    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU thread count for this command."""
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="CPU threads for torch (default 1: beside other busy processes, "
                             "more threads spin-wait and can run several times slower; "
                             "0 = torch's default, one per core)")


def apply_threads(threads: int) -> None:
    """Set torch's CPU thread count from ``--threads`` (0 keeps torch's default)."""
    if threads < 0:
        raise CTPError(f"--threads: expected >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
