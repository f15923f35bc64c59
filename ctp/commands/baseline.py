"""``ctp baseline``: baselines beside the planners: BC on a locomotion dataset, and on an
AntMaze dataset goal-conditioned BC and the data-generating controller (its reference row)."""

from __future__ import annotations

import argparse

from ctp.commands import print_help


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="evaluate a baseline: BC (locomotion), goal-conditioned "
                       "BC and the data-generating controller (AntMaze)")
    p.set_defaults(run=print_help(p))
    base_sub = p.add_subparsers(dest="baseline_command", metavar="{bc,gcbc,expert}")
    bc = base_sub.add_parser(
        "bc", help="behaviour cloning (MLP s -> a) vs the dataset's own mean return",
        description="Fits an MLP a = f(s) on every step of the dataset, evaluates it in the "
        "dataset's env (1000-step episodes, seeds SEED..SEED+EPISODES-1) and reports both its "
        "D4RL-normalised score and the behaviour data's, as a table line and a JSON file.",
    )
    bc.add_argument("dataset", metavar="DATASET",
                    help="hopper-medium, walker2d-medium-replay, ... or a full Minari id")
    _add_fit_options(bc)
    bc.add_argument("--episodes", type=int, default=50, help="evaluation episodes (default 50)")
    bc.add_argument("--seed", type=int, default=0,
                    help="training seed and first evaluation seed (default 0)")
    bc.add_argument("--out", default="",
                    help="results JSON (default runs/baselines/<dataset id>-bc.json)")
    bc.set_defaults(run=run_bc)

    gc = base_sub.add_parser(
        "gcbc", help="goal-conditioned BC (MLP s, g - xy -> a) on an AntMaze dataset",
        description="Fits an MLP a = f(s, g - xy) on the dataset's steps with hindsight goals "
        "(the x, y reached at a uniformly drawn later step of the same episode), evaluates it "
        "on the dataset's evaluation task with its goal (seeds SEED..SEED+EPISODES-1) and "
        "writes the JSON keys of 'ctp plan --out' (d4rl_normalized = 100 x success).",
    )
    _add_antmaze_episodes(gc)
    _add_fit_options(gc)
    gc.add_argument("--train-seed", type=int, default=0,
                    help="seed of the hindsight goals and the fit (default 0)")
    gc.add_argument("--out", default="",
                    help="results JSON (default runs/baselines/<env>-gcbc.json)")
    gc.add_argument("--no-progress", action="store_true", help="no progress bars")
    gc.set_defaults(run=run_gcbc)

    ex = base_sub.add_parser(
        "expert", help="an AntMaze dataset's data-generating controller on its eval task",
        description="Rolls the maze solver + shipped ant controller on the dataset's evaluation "
        "task (seeds SEED..SEED+EPISODES-1), noiseless or with --noise, and writes the JSON "
        "keys of 'ctp plan --out' (d4rl_normalized = 100 x success). The reference row of the "
        "AntMaze tables, never part of a planner.",
    )
    _add_antmaze_episodes(ex)
    ex.add_argument("--noise", type=float, default=0.0,
                    help="Gaussian action noise std (default 0; the data's is 0.2)")
    ex.add_argument("--action-scale", type=float, default=None,
                    help="factor on the controller's deterministic actions, in (0, 1] "
                    "(default: the one the datasets are generated with)")
    ex.add_argument("--actor", default="",
                    help="ant controller checkpoint (default: the shipped one; e.g. a "
                    "--train-policy run's ant-actor.pt)")
    ex.add_argument("--out", default="",
                    help="results JSON (default runs/baselines/<env>-expert.json)")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex.set_defaults(run=run_expert)


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    """How a BC baseline's MLP is fitted (``ctp.training.regression.FitConfig``)."""
    p.add_argument("--steps", type=int, default=20_000, help="gradient steps (default 20000)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default 3e-4)")


def _add_antmaze_episodes(p: argparse.ArgumentParser) -> None:
    """An AntMaze baseline's dataset and its evaluation episodes."""
    p.add_argument("env", metavar="DATASET", help="antmaze-umaze, antmaze-medium-play, ...")
    p.add_argument("--episodes", type=int, default=100, help="episodes (default 100)")
    p.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    p.add_argument("--num-envs", type=int, default=10, help="envs stepped together (default 10)")


def run_bc(args: argparse.Namespace) -> int:
    import torch

    from ctp.tasks.locomotion.baselines import FitConfig, bc_baseline, resolve_dataset
    from ctp.utils.atomic import write_json
    from ctp.utils.validation import check_output

    torch.set_num_threads(1)
    dataset_id = resolve_dataset(args.dataset)
    out = args.out or f"runs/baselines/{dataset_id.replace('/', '_')}-bc.json"
    if args.out:
        check_output("--out", out)
    fit = FitConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = bc_baseline(dataset_id, fit, episodes=args.episodes, seed=args.seed)
    write_json(out, result.to_dict())
    b, c = result.behaviour_d4rl_normalized, result.bc_d4rl_normalized
    print(f"{result.dataset_id}: behaviour {b['mean']:.1f} +- {b['se']:.1f}, BC {c['mean']:.1f} "
          f"+- {c['se']:.1f} (D4RL-normalised, {result.episodes} episodes); wrote {out}")
    return 0


def run_gcbc(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ctp.tasks.antmaze.gcbc import GCBCConfig, gcbc_baseline
    from ctp.tasks.antmaze.spec import get_spec
    from ctp.training.regression import FitConfig
    from ctp.utils.atomic import write_json
    from ctp.utils.validation import check_output

    spec = get_spec(args.env)
    out = Path(args.out or f"runs/baselines/{spec.env_name}-gcbc.json")
    if args.out:
        check_output("--out", out)
    fit = FitConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                    seed=args.train_seed, progress=not args.no_progress)
    result = gcbc_baseline(GCBCConfig(spec.env_name, fit, args.episodes, args.seed,
                                      args.num_envs))
    write_json(out, result)
    score = result["d4rl_normalized"]
    print(f"{spec.env_name}: goal-conditioned BC: {score['mean']:.1f} +- {score['se']:.1f} "
          f"(100 x success, {result['episodes']} episodes); wrote {out}")
    return 0


def run_expert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ctp.tasks.antmaze.reference import ExpertConfig, evaluate_expert
    from ctp.tasks.antmaze.spec import get_spec
    from ctp.utils.atomic import write_json
    from ctp.utils.validation import MAX_SEED, check_options, check_output, int_option

    spec = get_spec(args.env)
    check_options([int_option("--episodes", args.episodes),
                   int_option("--seed", args.seed, 0, MAX_SEED),
                   int_option("--num-envs", args.num_envs)])
    out = Path(args.out or f"runs/baselines/{spec.env_name}-expert.json")
    if args.out:
        check_output("--out", out)
    cfg = ExpertConfig(spec.env_name, episodes=args.episodes, seed=args.seed,
                       num_envs=args.num_envs, noise=args.noise, progress=not args.no_progress)
    if args.actor:
        cfg.actor_path = args.actor
    if args.action_scale is not None:
        cfg.action_scale = args.action_scale
    result = evaluate_expert(cfg)
    write_json(out, result)
    score = result["d4rl_normalized"]
    print(f"{spec.env_name}: expert (ours), noise {args.noise:g}, action scale "
          f"{cfg.action_scale:g}: {score['mean']:.1f} +- "
          f"{score['se']:.1f} (100 x success, {result['episodes']} episodes); decision p50 "
          f"{result['latency_ms']['p50']:.2f} ms; wrote {out}")
    return 0
