"""``ctp train teacher|ctm|critic|value|invdyn|distance``: train the EDM teacher, distil the
CTM, train the critic, the value network, the inverse-dynamics model and the goal distance."""

from __future__ import annotations

import argparse
import functools
import json

from ctp.commands import add_threads_option, apply_threads, print_help, tools

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
    "top_jump_prob": "ctm.top_jump_prob", "pair_weight": "ctm.pair_weight", "gamma": "gamma",
    "hidden": "hidden", "target_dims": "target_dims", "plan_dims": "plan_dims",
    "hindsight_goals": "hindsight_goals", "expectile": "expectile", "waypoints": "waypoints",
    "random_goals": "random_goals",
}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the EDM teacher, the CTM student, the critic, "
                       "the value network, the inverse-dynamics model and the goal distance")
    p.set_defaults(run=print_help(p))
    kinds = p.add_subparsers(dest="kind", metavar="{teacher,ctm,critic,value,invdyn,distance}")
    for kind, text in (
        ("teacher", "EDM teacher (temporal U-Net) on trajectory windows"),
        ("ctm", "CTM student distilled from a teacher checkpoint (--teacher)"),
        ("critic", "real-vs-generated critic for a student checkpoint (--student)"),
        ("value", "value network: window -> discounted return-to-go of its first step"),
        ("invdyn", "inverse dynamics a_t = f(s_t, s_{t+k}), k = --stride"),
        ("distance", "goal distance d(position, goal): env steps between two places of an "
                     "episode, at a low expectile (goal tasks; the distance scorer)"),
    ):
        # Options left unset (None) take the library's defaults, shown by --help.
        k = kinds.add_parser(kind, help=text,
                             formatter_class=functools.partial(LibraryDefaultsHelp, kind=kind))
        if kind in ("teacher", "value"):
            k.add_argument("--dataset", help="Minari dataset id")
            k.add_argument("--horizon", type=int, help="planned states per window")
            k.add_argument("--stride", type=int, help="env steps between states")
            k.add_argument("--dim", type=int, help="U-Net base width")
            k.add_argument("--dim-mults", type=_ints, help="e.g. 1,2,4")
            k.add_argument("--plan-dims", type=int,
                           help="plan the state's leading dims only (AntMaze: 2, its x, y); "
                                "0: the whole state")
        if kind == "teacher":
            k.add_argument("--hindsight-goals", type=float,
                           help="share of windows whose goal is a later state of the episode, "
                                "held from its step on (goal tasks; students inherit it)")
        if kind == "value":
            k.add_argument("--gamma", type=float,
                           help="discount of the return-to-go target (to the episode's end)")
        elif kind == "invdyn":
            k.add_argument("--dataset", help="Minari dataset id (with actions)")
            k.add_argument("--stride", type=int,
                           help="k: pairs (s_t, s_{t+k}) -> a_t; the planner's env steps "
                                "between plan states")
            k.add_argument("--hidden", type=_ints, help="MLP hidden widths, e.g. 256,256")
            k.add_argument("--target-dims", type=int,
                           help="read only the target's leading dims (AntMaze: 2, its x, y); "
                                "0: all")
        elif kind == "distance":
            k.add_argument("--dataset", help="Minari dataset id (a goal task's)")
            k.add_argument("--hidden", type=_ints, help="MLP hidden widths, e.g. 512,512,512")
            k.add_argument("--expectile", type=float,
                           help="expectile of the data's times between two places (low: the "
                                "data's fast end)")
            k.add_argument("--waypoints", type=int,
                           help="waypoints of its own episode each pair bootstraps through: "
                                "joins episodes that pass the same places (0: none)")
            k.add_argument("--random-goals", type=float,
                           help="share of goals drawn from the whole data (needs --waypoints)")
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
                           help="teacher ODE pairs (ctp pairs) to regress one jump on")
            k.add_argument("--pair-weight", type=float,
                           help="weight of that regression in the loss")
        elif kind == "critic":
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
    tools.add_deprecated_aliases(kinds)


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
        from ctp.training.config import TrainConfig

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
    from ctp.models.ctm import CTMConfig
    from ctp.training.config import TrainConfig

    given = {name: value for dest, value in vars(args).items()
             if value is not None and (name := _field(args.kind, dest)) is not None}
    ctm = {name.removeprefix("ctm."): given.pop(name) for name in list(given)
           if name.startswith("ctm.")}
    return TrainConfig(kind=args.kind, ctm=CTMConfig(**ctm), resume=args.resume,
                       compile=args.compile, cuda_graphs=args.cuda_graphs,
                       progress=not args.no_progress, **given)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ctp.training.config import validate
    from ctp.training.loop import train
    from ctp.utils.atomic import WriteFailed
    from ctp.utils.errors import Stopped

    cfg = config_from_args(args)
    validate(cfg)
    apply_threads(args.threads)
    if args.dry_run:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    latest = Path(cfg.out_dir) / "latest.pt"
    try:
        result = train(cfg)
    except Stopped as stop:  # before the training loop, whose own handler saves
        raise stop.keeping(f"{latest} is unchanged (continue with --resume)" if cfg.resume
                           else "no checkpoint was written") from None
    except WriteFailed as exc:
        raise exc.keeping(f"{exc.kept}; free some space and continue with --resume"
                          if latest.exists() else exc.kept) from None
    if result.stopped_by is not None:
        raise Stopped(result.stopped_by, f"the checkpoint of step {result.step} is saved: "
                                         f"{result.latest} (continue with --resume)")
    print(f"step {result.step}; latest checkpoint: {result.latest}")
    return 0
