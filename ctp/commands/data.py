"""``ctp data``: generate, list and inspect every task family's datasets (Minari format)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ctp.commands import print_help
from ctp.tasks import dataset_names


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate, list and inspect datasets (Minari format)")
    p.set_defaults(run=print_help(p))
    data_sub = p.add_subparsers(dest="data_command", metavar="{generate,list,info}")

    gen = data_sub.add_parser(
        "generate",
        help="generate a D4RL-recipe dataset of any task family",
        description=(
            "Each family's recipe (docs/design.md). Locomotion <task>-medium: 1M "
            "transitions of the medium SAC actor shipped in the package (minutes); with "
            "--train-policy, SAC is trained from scratch first (about 1-1.5 h on one thread, "
            "resumable: rerun the same command). <task>-medium-replay is that SAC run's replay "
            "buffer up to the medium checkpoint, so it needs the run: --train-policy, or a "
            "finished run in --run-dir. AntMaze antmaze-<maze>[-<kind>]: 1M steps of BFS waypoints "
            "followed by the shipped SAC ant controller with action noise 0.2 (about 11 min); "
            "with --train-policy the ant controller is trained first (up to 900k SAC steps, "
            "about 2 h on one thread; resumable)."
        ),
    )
    gen.add_argument("name", metavar="NAME",
                     help=f"one of {', '.join(dataset_names())}")
    gen.add_argument("--steps", type=int, default=1_000_000,
                     help="env steps (default 1M; not used by medium-replay)")
    gen.add_argument("--seed", type=int, default=123, help="seed (default 123)")
    gen.add_argument("--force", action="store_true", help="overwrite an existing dataset")
    gen.add_argument("--no-progress", action="store_true",
                     help="hide progress bars and notes")
    loco = gen.add_argument_group("behaviour policy (locomotion; AntMaze's ant controller)")
    loco.add_argument("--train-policy", action="store_true",
                      help="train (or resume) the SAC policy instead of the shipped one")
    loco.add_argument("--policy-seed", type=int, default=0, help="SAC seed (default 0)")
    loco.add_argument("--run-dir", default="",
                      help="SAC run folder (default runs/behaviour/<task>-seed<policy-seed>; "
                      "AntMaze: runs/ant-controller-seed<policy-seed>)")
    gen.set_defaults(run=run_generate)

    lst = data_sub.add_parser("list", help="local Minari datasets usable by ctp")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(run=run_list)

    info = data_sub.add_parser("info", help="episodes, steps, spaces, ref scores, size")
    info.add_argument("dataset_id", metavar="ID",
                      help="a Minari dataset id, e.g. ctp/mujoco/hopper/medium-v1")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=run_info)


def run_generate(args: argparse.Namespace) -> int:
    from ctp.tasks import generate_dataset
    from ctp.utils.errors import Stopped

    try:
        print(generate_dataset(args.name, steps=args.steps, seed=args.seed, force=args.force,
                               train_policy=args.train_policy, policy_seed=args.policy_seed,
                               run_dir=args.run_dir, progress=not args.no_progress))
    except Stopped as stop:  # the dataset is staged and moved in whole (ctp.data.minari_io)
        sac = ("; the SAC run keeps its last saved state (rerun the command to resume)"
               if args.train_policy else "")
        raise stop.keeping(f"no dataset was written{sac}") from None
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ctp.data.catalog import list_datasets
    from ctp.data.minari_io import datasets_root

    ids, unusable = list_datasets()
    if args.json:
        print(json.dumps({"root": str(datasets_root()), "datasets": ids, "unusable": unusable}))
        return 0
    if not ids:
        names = dataset_names()
        print(f"no usable datasets in {datasets_root()}; try: ctp data generate {names[0]} "
              f"(or {', '.join(names[1:4])}, ...)")
    else:
        print("\n".join(ids))
    for why in unusable.values():
        print(f"unusable: {why}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ctp.data.catalog import dataset_info

    info = dataset_info(args.dataset_id)
    if args.json:
        print(json.dumps(dataclasses.asdict(info), indent=2))
        return 0
    for field in dataclasses.fields(info):
        value = getattr(info, field.name)
        if value in ("", None):
            continue
        shown = f"{value:.2f}" if isinstance(value, float) else value
        print(f"{field.name:<22} {shown}")
    return 0
