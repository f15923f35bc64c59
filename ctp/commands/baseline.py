"""``ctp baseline``: train and evaluate a baseline on a locomotion dataset (BC so far)."""

from __future__ import annotations

import argparse

from ctp.commands import print_help


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="train and evaluate a baseline on a locomotion dataset")
    p.set_defaults(run=print_help(p))
    base_sub = p.add_subparsers(dest="baseline_command", metavar="{bc}")
    bc = base_sub.add_parser(
        "bc", help="behaviour cloning (MLP s -> a) vs the dataset's own mean return",
        description="Fits an MLP a = f(s) on every step of the dataset, evaluates it in the "
        "dataset's env (1000-step episodes, seeds SEED..SEED+EPISODES-1) and reports both its "
        "D4RL-normalised score and the behaviour data's, as a table line and a JSON file.",
    )
    bc.add_argument("dataset", metavar="DATASET",
                    help="hopper-medium, walker2d-medium-replay, ... or a full Minari id")
    bc.add_argument("--steps", type=int, default=20_000, help="gradient steps (default 20000)")
    bc.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    bc.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default 3e-4)")
    bc.add_argument("--episodes", type=int, default=50, help="evaluation episodes (default 50)")
    bc.add_argument("--seed", type=int, default=0,
                    help="training seed and first evaluation seed (default 0)")
    bc.add_argument("--out", default="",
                    help="results JSON (default runs/baselines/<dataset id>-bc.json)")
    bc.set_defaults(run=run_bc)


def run_bc(args: argparse.Namespace) -> int:
    import torch

    from ctp.tasks.locomotion.baselines import FitConfig, bc_baseline
    from ctp.utils.atomic import write_json

    torch.set_num_threads(1)
    fit = FitConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = bc_baseline(args.dataset, fit, episodes=args.episodes, seed=args.seed)
    out = args.out or f"runs/baselines/{result.dataset_id.replace('/', '_')}-bc.json"
    write_json(out, result.to_dict())
    b, c = result.behaviour_d4rl_normalized, result.bc_d4rl_normalized
    print(f"{result.dataset_id}: behaviour {b['mean']:.1f} +- {b['se']:.1f}, BC {c['mean']:.1f} "
          f"+- {c['se']:.1f} (D4RL-normalised, {result.episodes} episodes); wrote {out}")
    return 0
