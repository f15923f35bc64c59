"""``ctp data``: (filled in by its issue)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="data commands (not yet available)")
    p.set_defaults(run=run, parser=p)


def run(args: argparse.Namespace) -> int:
    args.parser.print_help()
    return 2
