"""The ``ctp`` subcommands, one module each (the file tools share ``tools``):
``add_parser(subparsers)`` and ``run(args)``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def warn_deprecated(old: str, new: str) -> None:
    """The one-line notice on stderr for a spelling that goes in the next release."""
    print(f"ctp: warning: '{old}' is deprecated and will be removed in the next release; "
          f"use '{new}'", file=sys.stderr)


def deprecated(
    run: Callable[[argparse.Namespace], int], old: str, new: str
) -> Callable[[argparse.Namespace], int]:
    """``run`` for a deprecated command spelling ``old``: the notice, then the command."""

    def run_deprecated(args: argparse.Namespace) -> int:
        warn_deprecated(old, new)
        return run(args)

    return run_deprecated


def add_deprecated_option(parser: argparse.ArgumentParser, old: str, new: str, **kwargs) -> None:
    """``old`` as a hidden alias of the option ``new``: it sets the same value (``kwargs`` as
    ``new``'s, e.g. ``type``) and prints the notice when used."""

    class Alias(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None) -> None:
            warn_deprecated(old, new)
            setattr(namespace, self.dest, values)

    parser.add_argument(old, dest=new.lstrip("-").replace("-", "_"), action=Alias,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


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
                             "0 = torch's default, one per core; at most 4 per core)")


def apply_threads(threads: int) -> None:
    """Set torch's CPU thread count from ``--threads`` (0 keeps torch's default)."""
    from ctp.utils.validation import check_options, int_option, max_threads

    check_options([int_option("--threads", threads, 0, max_threads())])
    if threads:
        import torch

        torch.set_num_threads(threads)
