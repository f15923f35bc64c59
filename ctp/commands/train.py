"""``ctp train teacher|ctm|critic``: train the EDM teacher, distil the CTM, train the critic."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from ctp.commands import add_threads_option, apply_threads, print_help


def _mults(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train teacher, ctm student and critic; make teacher pairs; "
                                     "average, bundle, unbundle checkpoints; plot curves")
    p.set_defaults(run=print_help(p))
    kinds = p.add_subparsers(
        dest="kind", metavar="{teacher,ctm,critic,pairs,average,bundle,unbundle,curves}")
    for kind, text in (
        ("teacher", "EDM teacher (temporal U-Net) on trajectory windows"),
        ("ctm", "CTM student distilled from a teacher checkpoint (--teacher)"),
        ("critic", "real-vs-generated critic for a student checkpoint (--student)"),
    ):
        k = kinds.add_parser(kind, help=text)
        if kind == "teacher":
            k.add_argument("--dataset", default="ctp/pointmaze/umaze-v1", help="Minari dataset id")
            k.add_argument("--horizon", type=int, default=32, help="planned states per window")
            k.add_argument("--stride", type=int, default=4, help="env steps between states")
            k.add_argument("--dim", type=int, default=32, help="U-Net base width")
            k.add_argument("--dim-mults", type=_mults, default=(1, 2, 4), help="e.g. 1,2,4")
        elif kind == "ctm":
            k.add_argument("--teacher", required=True, help="teacher checkpoint (.pt)")
            k.add_argument("--grid-size", type=int, default=18, help="Karras grid levels N")
            k.add_argument("--teacher-steps", type=int, default=4,
                           help="max teacher Heun steps K from t to u")
            k.add_argument("--lambda-dsm", type=float, default=0.02, help="DSM loss weight")
            k.add_argument("--s-zero-prob", type=float, default=0.25,
                           help="share of items whose target time s is 0")
            k.add_argument("--top-jump-prob", type=float, default=0.0,
                           help="share of items trained on the one-jump map sigma_max -> 0")
            k.add_argument("--dim", type=int, default=None,
                           help="student base width below the teacher's (cheaper plans): "
                                "starts from a subset of the teacher's channels")
            k.add_argument("--pairs", default=None,
                           help="teacher ODE pairs (ctp train pairs) to regress one jump on")
            k.add_argument("--pair-weight", type=float, default=1.0,
                           help="weight of that regression in the loss")
        else:
            k.add_argument("--student", required=True, help="CTM student checkpoint (.pt)")
        k.add_argument("--batch-size", type=int, default=64)
        k.add_argument("--lr", type=float, default=2e-4 if kind != "ctm" else 1e-4)
        k.add_argument("--steps", type=int, default=10_000)
        k.add_argument("--max-minutes", type=float, default=None, help="time budget")
        k.add_argument("--seed", type=int, default=0)
        k.add_argument("--out", default=f"runs/{kind}", help="output folder")
        k.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
        # The CTM target network is the EMA: 0.95 lets the one-jump map follow within a few
        # hundred steps (0.999 needed thousands; docs/results.md section 6).
        k.add_argument("--ema", type=float, default=0.999 if kind != "ctm" else 0.95,
                       help="EMA decay (for ctm also the target network's)")
        k.add_argument("--grad-clip", type=float, default=1.0)
        k.add_argument("--checkpoint-every", type=int, default=1000)
        k.add_argument("--keep-best", type=int, default=2, help="lowest-loss checkpoints kept")
        k.add_argument("--device", default="cpu", help="cpu or cuda")
        k.add_argument("--compile", action="store_true", help="torch.compile the network")
        k.add_argument("--cuda-graphs", action="store_true",
                       help="capture the whole training step in a CUDA graph (CUDA only)")
        k.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        k.add_argument("--dry-run", action="store_true", help="print the resolved config")
        add_threads_option(k)
        k.set_defaults(run=run)
    q = kinds.add_parser("pairs", help="teacher ODE pairs (noise -> Heun sample) for ctm --pairs")
    q.add_argument("--teacher", required=True, help="teacher checkpoint (.pt)")
    q.add_argument("--out", required=True, help="pairs file to write (.pt)")
    q.add_argument("--count", type=int, default=32_768, help="number of pairs")
    q.add_argument("--heun-steps", type=int, default=18, help="teacher Karras levels N")
    q.add_argument("--far-goal-prob", type=float, default=0.5,
                   help="share of goals taken from another random window")
    q.add_argument("--batch-size", type=int, default=256)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_threads_option(q)
    q.set_defaults(run=run_pairs)
    a = kinds.add_parser("average", help="average the weights of several checkpoints of one run")
    a.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoints of one run (.pt)")
    a.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    a.set_defaults(run=run_average)
    b = kinds.add_parser("bundle", help="bundle student (+ teacher, critic) into a planner file")
    b.add_argument("--student", required=True, help="CTM student checkpoint")
    b.add_argument("--teacher", help="teacher checkpoint (enables --sampler edm)")
    b.add_argument("--critic", help="critic checkpoint")
    b.add_argument("--out", required=True, help="planner file to write (.pt)")
    b.add_argument("--half", action="store_true", help="store weights as float16")
    b.add_argument("--candidates", type=int, default=16, help="default K for ctp plan")
    b.add_argument("--replan", type=int, default=None, help="default replan interval R")
    b.add_argument("--dyn-weight", type=float, default=10.0, help="default dynamics weight")
    b.add_argument("--critic-weight", type=float, default=0.0, help="default critic weight")
    b.set_defaults(run=run_bundle)
    u = kinds.add_parser("unbundle", help="planner file -> training checkpoints, to go on training")
    u.add_argument("planner", help="planner file (.pt), e.g. ctp/assets/pointmaze-medium.pt")
    u.add_argument("--out", required=True, help="folder for teacher/, ctm/ and critic/")
    u.set_defaults(run=run_unbundle)
    c = kinds.add_parser("curves", help="plot the loss curves of training runs (PNG)")
    c.add_argument("runs", nargs="+", metavar="RUN", help="ctp train output folders")
    c.add_argument("--out", required=True, help="PNG file to write")
    c.set_defaults(run=run_curves)


def run_curves(args: argparse.Namespace) -> int:
    from ctp.plotting import plot_training_curves

    plot_training_curves(args.runs, args.out)
    print(f"wrote {args.out}")
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from ctp.teacher_pairs import PairsConfig, make_pairs

    apply_threads(args.threads)
    path = make_pairs(PairsConfig(args.teacher, args.out, args.count, args.heun_steps,
                                  args.far_goal_prob, args.batch_size, args.seed,
                                  not args.no_progress))
    print(f"wrote {args.count} teacher pairs to {path} ({path.stat().st_size / 2**20:.1f} MB)")
    return 0


def run_average(args: argparse.Namespace) -> int:
    from ctp.averaging import write_average

    path = write_average(args.checkpoints, args.out)
    print(f"wrote the average of {len(args.checkpoints)} checkpoints: {path}")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from ctp.planning.bundle import ExportConfig, export_planner

    defaults = {"candidates": args.candidates, "replan": args.replan,
                "dyn_weight": args.dyn_weight, "critic_weight": args.critic_weight}
    path = export_planner(ExportConfig(args.student, args.out, args.teacher, args.critic,
                                       args.half, defaults))
    print(f"wrote planner {path} ({path.stat().st_size / 2**20:.1f} MB)")
    return 0


def run_unbundle(args: argparse.Namespace) -> int:
    from ctp.planning.bundle import unbundle_planner

    for kind, path in unbundle_planner(args.planner, args.out).items():
        print(f"wrote {kind} checkpoint {path}")
    return 0


def config_from_args(args: argparse.Namespace):
    from ctp.ctm import CTMConfig
    from ctp.train import TrainConfig

    cfg = TrainConfig(
        kind=args.kind, batch_size=args.batch_size, lr=args.lr, steps=args.steps,
        max_minutes=args.max_minutes, seed=args.seed, out_dir=args.out, resume=args.resume,
        ema_decay=args.ema, grad_clip=args.grad_clip, checkpoint_every=args.checkpoint_every,
        keep_best=args.keep_best, device=args.device, compile=args.compile,
        cuda_graphs=args.cuda_graphs, progress=not args.no_progress,
    )
    if args.kind == "teacher":
        cfg.dataset_id, cfg.horizon, cfg.stride = args.dataset, args.horizon, args.stride
        cfg.dim, cfg.dim_mults = args.dim, args.dim_mults
    elif args.kind == "ctm":
        cfg.teacher, cfg.student_dim, cfg.pairs = args.teacher, args.dim, args.pairs
        cfg.ctm = CTMConfig(grid_size=args.grid_size, max_teacher_steps=args.teacher_steps,
                            lambda_dsm=args.lambda_dsm, s_zero_prob=args.s_zero_prob,
                            top_jump_prob=args.top_jump_prob, pair_weight=args.pair_weight)
    else:
        cfg.student = args.student
    return cfg


def run(args: argparse.Namespace) -> int:
    from ctp.train import train, validate

    cfg = config_from_args(args)
    validate(cfg)
    apply_threads(args.threads)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    result = train(cfg)
    if result.stopped_by is not None:
        name = signal.Signals(result.stopped_by).name
        print(f"ctp: stopped by {name} at step {result.step}; latest checkpoint: "
              f"{result.latest} (continue with --resume)", file=sys.stderr)
        return 128 + result.stopped_by
    print(f"step {result.step}; latest checkpoint: {result.latest}")
    return 0
