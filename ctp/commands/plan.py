"""``ctp plan``: plan and evaluate in closed loop (the planner issue fills this in)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="plan with a trained CTM and evaluate it in closed loop")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print("ctp plan: no planner is bundled yet (not yet trained); see README, 'Training'.")
    return 0
