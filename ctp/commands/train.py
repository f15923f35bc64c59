"""``ctp train teacher|ctm|critic``: train the EDM teacher, distil the CTM, train the critic."""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys

from ctp.commands import add_threads_option, apply_threads, print_help

# CLI option (argparse dest) -> the TrainConfig field it sets ("ctm." for CTMConfig's); ctm's
# --dim is student_dim (see _field). Their CLI defaults are None: the library's apply.
OPTION_FIELDS = {
    "dataset": "dataset_id", "horizon": "horizon", "stride": "stride", "dim": "dim",
    "dim_mults": "dim_mults", "batch_size": "batch_size", "lr": "lr",
    "lr_schedule": "lr_schedule", "warmup_steps": "warmup_steps", "lr_min": "lr_min",
    "steps": "steps", "max_minutes": "max_minutes", "seed": "seed", "out": "out_dir",
    "ema": "ema_decay", "grad_clip": "grad_clip", "checkpoint_every": "checkpoint_every",
    "keep_best": "keep_best", "device": "device", "teacher": "teacher", "pairs": "pairs",
    "student": "student", "grid_size": "ctm.grid_size", "teacher_steps": "ctm.max_teacher_steps",
    "lambda_dsm": "ctm.lambda_dsm", "s_zero_prob": "ctm.s_zero_prob",
    "top_jump_prob": "ctm.top_jump_prob", "pair_weight": "ctm.pair_weight",
}


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
        # Options left unset (None) take the library's defaults, shown by --help.
        k = kinds.add_parser(kind, help=text,
                             formatter_class=functools.partial(LibraryDefaultsHelp, kind=kind))
        if kind == "teacher":
            k.add_argument("--dataset", help="Minari dataset id")
            k.add_argument("--horizon", type=int, help="planned states per window")
            k.add_argument("--stride", type=int, help="env steps between states")
            k.add_argument("--dim", type=int, help="U-Net base width")
            k.add_argument("--dim-mults", type=_mults, help="e.g. 1,2,4")
        elif kind == "ctm":
            k.add_argument("--teacher", required=True, help="teacher checkpoint (.pt)")
            k.add_argument("--grid-size", type=int, help="Karras grid levels N")
            k.add_argument("--teacher-steps", type=int,
                           help="max teacher Heun steps K from t to u")
            k.add_argument("--lambda-dsm", type=float, help="DSM loss weight")
            k.add_argument("--s-zero-prob", type=float,
                           help="share of items whose target time s is 0")
            k.add_argument("--top-jump-prob", type=float,
                           help="share of items trained on the one-jump map sigma_max -> 0")
            k.add_argument("--dim", type=int, default=None,
                           help="student base width below the teacher's (cheaper plans): "
                                "starts from a subset of the teacher's channels")
            k.add_argument("--pairs", default=None,
                           help="teacher ODE pairs (ctp train pairs) to regress one jump on")
            k.add_argument("--pair-weight", type=float,
                           help="weight of that regression in the loss")
        else:
            k.add_argument("--student", required=True, help="CTM student checkpoint (.pt)")
        k.add_argument("--batch-size", type=int, help="windows per step (per process)")
        k.add_argument("--lr", type=float, help="peak learning rate")
        k.add_argument("--lr-schedule", metavar="{constant,cosine}",
                       help="after the warm-up: constant, or cosine decay to --lr-min at --steps")
        k.add_argument("--warmup-steps", type=int,
                       help="linear learning-rate warm-up from --lr / N to --lr")
        k.add_argument("--lr-min", type=float, help="the cosine schedule's final learning rate")
        k.add_argument("--steps", type=int, help="training steps (the schedule's length)")
        k.add_argument("--max-minutes", type=float, help="time budget")
        k.add_argument("--seed", type=int, help="random seed")
        k.add_argument("--out", help="output folder")
        k.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
        k.add_argument("--ema", type=float, help="EMA decay (for ctm also the target network's)")
        k.add_argument("--grad-clip", type=float, help="gradient norm clip")
        k.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
        k.add_argument("--keep-best", type=int, help="lowest-loss checkpoints kept")
        k.add_argument("--device", help="cpu or cuda")
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


def _field(kind: str, dest: str) -> str | None:
    """The ``TrainConfig`` field (``ctm.<name>`` for a ``CTMConfig`` one) an option sets."""
    if dest == "dim" and kind == "ctm":
        return "student_dim"
    return OPTION_FIELDS.get(dest)


class LibraryDefaultsHelp(argparse.HelpFormatter):
    """Help that shows, for options whose CLI default is None, the library's default for
    ``kind`` (imported only when help is printed)."""

    def __init__(self, prog: str, kind: str) -> None:
        super().__init__(prog)
        self.kind = kind

    def _get_help_string(self, action: argparse.Action) -> str:
        from ctp.train import TrainConfig

        help_text = action.help or ""
        name = _field(self.kind, action.dest) if action.default is None else None
        if name is None:
            return help_text
        owner = TrainConfig(kind=self.kind)
        if name.startswith("ctm."):
            owner, name = owner.ctm, name.removeprefix("ctm.")
        value = getattr(owner, name)
        if value is None:
            return help_text
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return f"{help_text} (default: {shown})".lstrip()


def config_from_args(args: argparse.Namespace):
    """The ``TrainConfig`` of a ``ctp train KIND`` command line: the options given, the
    library's defaults for the rest."""
    from ctp.ctm import CTMConfig
    from ctp.train import TrainConfig

    given = {name: value for dest, value in vars(args).items()
             if value is not None and (name := _field(args.kind, dest)) is not None}
    ctm = {name.removeprefix("ctm."): given.pop(name) for name in list(given)
           if name.startswith("ctm.")}
    return TrainConfig(kind=args.kind, ctm=CTMConfig(**ctm), resume=args.resume,
                       compile=args.compile, cuda_graphs=args.cuda_graphs,
                       progress=not args.no_progress, **given)


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
