"""``ctp data``: generate, list and inspect PointMaze datasets in Minari format."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ctp.commands import print_help

MAZE_CHOICES = ("pointmaze-umaze", "pointmaze-medium", "pointmaze-large")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate, list and inspect PointMaze datasets")
    p.set_defaults(run=print_help(p))
    data_sub = p.add_subparsers(dest="data_command", metavar="{generate,list,info}")

    gen = data_sub.add_parser(
        "generate", help="generate a D4RL-recipe PointMaze dataset (ctp/pointmaze/<maze>-v1)"
    )
    gen.add_argument("maze", metavar="MAZE", help=f"one of {', '.join(MAZE_CHOICES)}")
    gen.add_argument("--steps", type=int, default=1_000_000, help="env steps (default 1M)")
    gen.add_argument("--seed", type=int, default=123, help="seed (default 123)")
    gen.add_argument("--force", action="store_true", help="overwrite an existing dataset")
    gen.set_defaults(run=run_generate)

    lst = data_sub.add_parser("list", help="local Minari datasets usable by ctp")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(run=run_list)

    info = data_sub.add_parser("info", help="episodes, steps, spaces, ref scores, size")
    info.add_argument("dataset_id", metavar="ID", help="e.g. ctp/pointmaze/umaze-v1")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=run_info)


def run_generate(args: argparse.Namespace) -> int:
    from ctp.data.generate import GenerateConfig, generate_dataset
    from ctp.envs.specs import get_maze_spec

    result = generate_dataset(
        GenerateConfig(get_maze_spec(args.maze), steps=args.steps, seed=args.seed,
                       force=args.force)
    )
    print(
        f"wrote {result.dataset_id}: {result.steps} steps, {result.episodes} episodes, "
        f"ref_min_score {result.ref_min_score:.2f}, ref_max_score {result.ref_max_score:.2f}, "
        f"{result.seconds:.0f} s"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ctp.data.catalog import list_maze_datasets
    from ctp.data.minari_io import datasets_root

    ids = list_maze_datasets()
    if args.json:
        print(json.dumps({"root": str(datasets_root()), "datasets": ids}))
    elif not ids:
        print(f"no PointMaze datasets in {datasets_root()}; try: ctp data generate pointmaze-umaze")
    else:
        print("\n".join(ids))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ctp.data.catalog import dataset_info

    info = dataset_info(args.dataset_id)
    if args.json:
        print(json.dumps(dataclasses.asdict(info), indent=2))
        return 0
    for field in dataclasses.fields(info):
        value = getattr(info, field.name)
        shown = f"{value:.2f}" if isinstance(value, float) else value
        print(f"{field.name:<20} {shown}")
    return 0
