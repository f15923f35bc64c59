"""``ctp pairs|jump-error|average|bundle|unbundle|curves``: the tools around training that
do not train.

Each makes or reads files of the training pipeline (data -> teacher -> pairs -> student ->
critic -> bundle): teacher pairs for ``ctp train ctm --pairs`` and a student's one-jump error
on them, the average of checkpoints, a planner file and back, loss curves. All but
jump-error used to be ``ctp train <tool>``; those spellings still work for one release and
print a deprecation notice (:func:`add_deprecated_aliases`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ctp.commands import add_threads_option, apply_threads, deprecated
from ctp.commands.plan import (
    add_aim_option,
    add_back_off_option,
    add_scorer_options,
    add_target_radius_option,
    add_velocities_option,
)

Run = Callable[[argparse.Namespace], int]


def _pairs(q: argparse.ArgumentParser) -> Run:
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
    return run_pairs


def _jump_error(j: argparse.ArgumentParser) -> Run:
    j.add_argument("--student", required=True, help="CTM student checkpoint (.pt); for a "
                   "planner file, ctp unbundle it first")
    j.add_argument("--pairs", required=True, help="pairs file (ctp pairs) of the student's "
                   "teacher: its training pairs, or fresh ones (another --seed)")
    j.add_argument("--batch-size", type=int, default=256)
    j.add_argument("--out", help="JSON file to write the result to")
    add_threads_option(j)
    return run_jump_error


def _average(a: argparse.ArgumentParser) -> Run:
    a.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoints of one run (.pt)")
    a.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    return run_average


def _bundle(b: argparse.ArgumentParser) -> Run:
    b.add_argument("--student", required=True, help="CTM student checkpoint")
    b.add_argument("--teacher", help="teacher checkpoint (enables --sampler edm)")
    b.add_argument("--critic", help="critic checkpoint")
    b.add_argument("--value", help="value checkpoint (ctp train value): the 'value' scorer")
    b.add_argument("--invdyn", help="inverse-dynamics checkpoint (ctp train invdyn): the "
                   "locomotion controller")
    b.add_argument("--distance", help="goal distance checkpoint (ctp train distance): the "
                   "'distance' scorer")
    b.add_argument("--out", required=True, help="planner file to write (.pt)")
    b.add_argument("--half", action="store_true", help="store weights as float16")
    b.add_argument("--candidates", type=int, default=16, help="default K for ctp plan")
    b.add_argument("--replan", type=int, default=None,
                   help="default replan interval R (default: the task's; locomotion 1)")
    add_scorer_options(b, "the task")
    add_velocities_option(b, "plan")
    add_aim_option(b, "the model's own k")
    add_target_radius_option(b, "act on the best plan")
    add_back_off_option(b, "never")
    return run_bundle


def _unbundle(u: argparse.ArgumentParser) -> Run:
    u.add_argument("planner", help="planner file (.pt), e.g. ctp/assets/pointmaze-medium.pt")
    u.add_argument("--out", required=True,
                   help="folder for teacher/, ctm/, critic/, value/, invdyn/ and distance/")
    return run_unbundle


def _curves(c: argparse.ArgumentParser) -> Run:
    c.add_argument("runs", nargs="+", metavar="RUN", help="ctp train output folders")
    c.add_argument("--out", required=True, help="picture to write (.png, .jpg, .pdf, .svg)")
    return run_curves


# name: (help, adds the options and returns the command's run)
TOOLS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], Run]]] = {
    "pairs": ("teacher ODE pairs (noise -> Heun sample) for ctp train ctm --pairs", _pairs),
    "jump-error": ("a student's one-jump error on teacher pairs (trained-on or fresh)",
                   _jump_error),
    "average": ("average the weights of several checkpoints of one run", _average),
    "bundle": ("bundle student (+ teacher, critic, value, invdyn, distance) into a planner "
               "file", _bundle),
    "unbundle": ("planner file -> training checkpoints, to go on training", _unbundle),
    "curves": ("plot the loss curves of training runs (PNG)", _curves),
}

OLD_SPELLINGS = ("pairs", "average", "bundle", "unbundle", "curves")  # once ctp train <tool>


def add_parser(sub: argparse._SubParsersAction) -> None:
    for name, (text, add_options) in TOOLS.items():
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(run=add_options(p))


def add_deprecated_aliases(kinds: argparse._SubParsersAction) -> None:
    """``ctp train <tool>``, the old spelling: the same options, a notice on stderr.

    Registered without ``help`` so that ``ctp train --help`` does not list them.
    """
    for name in OLD_SPELLINGS:
        text, add_options = TOOLS[name]
        p = kinds.add_parser(name, description=f"deprecated: use 'ctp {name}'. {text}")
        p.set_defaults(run=deprecated(add_options(p), f"ctp train {name}", f"ctp {name}"))


def run_curves(args: argparse.Namespace) -> int:
    from ctp.training.plotting import plot_training_curves

    plot_training_curves(args.runs, args.out)
    print(f"wrote {args.out}")
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from ctp.training.teacher_pairs import PairsConfig, make_pairs

    apply_threads(args.threads)
    path = make_pairs(PairsConfig(args.teacher, args.out, args.count, args.heun_steps,
                                  args.far_goal_prob, args.batch_size, args.seed,
                                  not args.no_progress))
    print(f"wrote {args.count} teacher pairs to {path} ({path.stat().st_size / 2**20:.1f} MB)")
    return 0


def run_jump_error(args: argparse.Namespace) -> int:
    from ctp.models.builder import load_model
    from ctp.tasks import task_for_dataset
    from ctp.training.teacher_pairs import jump_error, load_pairs
    from ctp.utils.atomic import write_json
    from ctp.utils.validation import check_options, check_output

    apply_threads(args.threads)
    check_options([(args.batch_size >= 1, "--batch-size", ">= 1", args.batch_size)])
    if args.out is not None:
        check_output("--out", args.out, {"--student": args.student, "--pairs": args.pairs})
    student, payload = load_model(args.student, "ctm")
    pairs = load_pairs(args.pairs, payload)
    error = jump_error(task_for_dataset(payload["dataset_id"]), student, pairs,
                       args.batch_size)
    count = pairs["noise"].shape[0]
    print(f"one-jump error (mean squared, normalised units) on {count} pairs: {error:.5f}")
    if args.out is not None:
        write_json(args.out, {"student": args.student, "step": payload.get("step"),
                              "pairs": args.pairs, "count": count, "jump_error": error})
        print(f"wrote {args.out}")
    return 0


def run_average(args: argparse.Namespace) -> int:
    from ctp.training.averaging import write_average

    path = write_average(args.checkpoints, args.out)
    print(f"wrote the average of {len(args.checkpoints)} checkpoints: {path}")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    from ctp.planning.bundle import ExportConfig, export_planner, load_planner_file

    defaults = {"candidates": args.candidates, "replan": args.replan,
                "dyn_weight": args.dyn_weight, "critic_weight": args.critic_weight,
                **({"velocities": args.velocities} if args.velocities else {}),
                **({"aim": args.aim} if args.aim is not None else {}),
                **({"target_radius": args.target_radius}
                   if args.target_radius is not None else {}),
                **({"back_off": args.back_off} if args.back_off is not None else {})}
    path = export_planner(ExportConfig(args.student, args.out, args.teacher, args.critic,
                                       args.half, defaults, dict(args.scorer or []),
                                       value=args.value, invdyn=args.invdyn,
                                       distance=args.distance))
    print(f"wrote planner {path} ({path.stat().st_size / 2**20:.1f} MB)")
    payload = load_planner_file(path)
    if payload["ref_min_score"] is None or payload["ref_max_score"] is None:
        print(f"note: {payload['dataset_id']} has no ref_min_score / ref_max_score, so ctp plan "
              "reports this planner's raw return and the D4RL-normalised score of its env "
              "(D4RL's published constants), and 'normalized' as n/a")
    return 0


def run_unbundle(args: argparse.Namespace) -> int:
    from ctp.planning.bundle import unbundle_planner

    for kind, path in unbundle_planner(args.planner, args.out).items():
        print(f"wrote {kind} checkpoint {path}")
    return 0
