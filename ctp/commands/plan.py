"""``ctp plan``: plan with a CTM (or the EDM teacher) and evaluate it in closed loop."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ctp.commands import add_deprecated_option, add_threads_option, apply_threads
from ctp.tasks import DEFAULT_ENV


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="plan with a trained CTM and evaluate it in closed loop")
    p.add_argument("--env", default=DEFAULT_ENV,
                   help=f"an env of a planning task (default {DEFAULT_ENV}; also "
                        "pointmaze-medium, pointmaze-large, and one per locomotion dataset: "
                        "hopper-medium, hopper-medium-replay, walker2d-..., halfcheetah-...; "
                        "those need --checkpoint)")
    p.add_argument("--checkpoint", help="planner file (default: the one bundled for --env)")
    p.add_argument("--episodes", type=int, default=20, help="episodes (default 20)")
    p.add_argument("--seed", type=int, default=0, help="first episode seed (default 0)")
    p.add_argument("--candidates", type=int, default=None, help="K plans per env")
    p.add_argument("--jumps", type=int, default=None, help="CTM jumps per plan (NFE)")
    add_deprecated_option(p, "--steps", "--jumps", type=int)
    p.add_argument("--sampler", choices=("ctm", "edm"), default=None,
                   help="ctm student (default) or the EDM teacher with Heun")
    p.add_argument("--edm-steps", type=int, default=None, help="Heun levels N (NFE 2N-1)")
    add_scorer_options(p, "")
    add_velocities_option(p, "the planner file's")
    add_aim_option(p, "the planner file's, else the model's own k")
    add_target_radius_option(p, "the planner file's, else act on the best plan")
    add_back_off_option(p, "the planner file's, else never")
    p.add_argument("--multi-goal", action="store_true", help="Multi2D: a new goal per episode")
    p.add_argument("--replan", type=int, default=None, metavar="R",
                   help="replan every R env steps (default: the planner file's setting)")
    p.add_argument("--open-loop", action="store_true", help="plan once per episode")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the networks (compiles during warm-up, then plans faster)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay sampling + scoring from a CUDA graph (CUDA only)")
    p.add_argument("--num-envs", type=int, default=1,
                   help="envs stepped (and planned for) together; latency is per plan call")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", help="write the results as JSON")
    p.add_argument("--plot", help="the task's picture of a few episodes (PNG): maze walls, "
                                  "plans and paths; locomotion return curves")
    p.add_argument("--no-progress", action="store_true",
                   help="hide the progress bar and the note before --compile's compile")
    p.add_argument("--results-table", metavar="FILE.md",
                   help="evaluate every shipped planner (1 jump, 2 jumps, EDM 18; single-task "
                        "and Multi2D; --episodes per cell) and write the README table as "
                        "Markdown (FILE.md) and JSON (FILE.json)")
    p.add_argument("--workers", type=int, default=1,
                   help="with --results-table: processes scoring cells side by side "
                        "(latencies are timed afterwards, alone)")
    p.add_argument("--mazes", type=_maze_list, default=None, metavar="M1,M2",
                   help="with --results-table: only these rows, e.g. umaze,large "
                        "(default: every maze with a shipped planner)")
    add_threads_option(p)
    p.set_defaults(run=run)


def add_scorer_options(p: argparse.ArgumentParser, default: str) -> None:
    """``--scorer NAME=W`` (repeatable) and its shorthands ``--dyn-weight``, ``--critic-weight``
    (``default``: where unset weights come from, for the help)."""
    p.add_argument("--scorer", type=scorer_weight, action="append", default=None,
                   metavar="NAME=W", help="weight of a plan scorer, e.g. critic=0.5 (repeat for "
                   f"several; 0 turns one off; unset: {default or 'the planner file'}'s)")
    p.add_argument("--dyn-weight", type=float, default=None,
                   help="dynamics penalty weight (--scorer dynamics=W)")
    p.add_argument("--critic-weight", type=float, default=None,
                   help="critic logit weight (--scorer critic=W; needs a critic)")


def add_aim_option(p: argparse.ArgumentParser, default: str) -> None:
    """``--aim STEPS``: how far ahead on the plan inverse dynamics aims (unset: ``default``)."""
    p.add_argument("--aim", type=int, default=None, metavar="STEPS",
                   help="env steps ahead on the plan the inverse dynamics heads for "
                        f"(default: {default})")


def add_target_radius_option(p: argparse.ArgumentParser, default: str) -> None:
    """``--target-radius R``: act toward the candidate state nearest the goal within R of the
    agent (unset: ``default``)."""
    p.add_argument("--target-radius", type=float, default=None, metavar="R",
                   help="act toward a state, not a plan: of every candidate's states within R "
                        "(AntMaze: metres) of the agent, the one the goal distance puts "
                        f"nearest the goal; 0: act on the best-scored plan (default: {default})")


def add_back_off_option(p: argparse.ArgumentParser, default: str) -> None:
    """``--back-off STEPS``: with ``--target-radius``, how long a stuck agent walks away from
    its target (unset: ``default``)."""
    p.add_argument("--back-off", type=int, default=None, metavar="STEPS",
                   help="with --target-radius: an agent that moved under 0.3 (AntMaze: metres) "
                        "in 40 steps walks this many steps straight away from its target, then "
                        f"heads for the targets again; 0: never (default: {default})")


def add_velocities_option(p: argparse.ArgumentParser, source: str) -> None:
    """``--velocities {plan,positions}``: what the controller aims for (unset: ``source``)."""
    from ctp.tasks.base import VELOCITY_SOURCES

    p.add_argument("--velocities", choices=VELOCITY_SOURCES, default=None,
                   help="velocities the controller aims for: the plan's own (plan) or those "
                        f"its positions imply (positions; PointMaze) (default: {source})")


def scorer_weight(text: str) -> tuple[str, float]:
    """``NAME=W`` -> (name, weight); the name is checked against the task later."""
    name, sep, weight = text.partition("=")
    try:
        value = float(weight)
    except ValueError:
        value = None
    if not sep or not name.strip() or value is None:
        raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT, e.g. critic=0.5, got {text!r}")
    return name.strip(), value


def _maze_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected maze names, e.g. umaze,medium")
    return names


def run_results_table(args: argparse.Namespace) -> int:
    from ctp.tasks.pointmaze.results_table import TableConfig, build_table, to_markdown
    from ctp.utils.atomic import WriteFailed, atomic_write, write_json
    from ctp.utils.validation import check_output

    out = Path(args.results_table)
    for path in (out, out.with_suffix(".json")):
        check_output("--results-table", path)
    table = build_table(TableConfig(episodes=args.episodes, seed=args.seed, mazes=args.mazes,
                                    workers=args.workers, progress=not args.no_progress))
    markdown = to_markdown(table)
    print(markdown, flush=True)  # first: a failed write (a full disk) loses nothing
    try:
        atomic_write(out, lambda fh: fh.write(markdown.encode()))
        write_json(out.with_suffix(".json"), table)
    except WriteFailed as exc:
        print(json.dumps(table, indent=2), flush=True)
        raise exc.keeping(f"the table is printed above, Markdown and JSON; {exc.kept}") from None
    return 0


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    if args.results_table:
        return run_results_table(args)
    from ctp.utils.errors import CTPError

    if args.mazes is not None or args.workers != 1:
        option = "--mazes" if args.mazes is not None else "--workers"
        raise CTPError(f"{option}: only applies with --results-table")
    from ctp.evaluation.evaluate import EvalConfig, evaluate, format_table
    from ctp.planning.bundle import bundled_planner_path, load_planner_file
    from ctp.planning.config import defaults_of
    from ctp.planning.planner import Planner
    from ctp.tasks import task_for_env
    from ctp.utils.atomic import WriteFailed

    env = task_for_env(args.env).env_name(args.env)
    if args.checkpoint is None and not bundled_planner_path(env).exists():
        raise CTPError(f"no planner is bundled for {env} in this install; train one "
                       "with the README's 'Training' commands and pass --checkpoint")
    path = args.checkpoint or str(bundled_planner_path(env))
    payload = load_planner_file(path)
    planner_cfg = defaults_of(payload)
    if args.scorer:
        from ctp.planning.scorers import check_weights
        from ctp.tasks import DEFAULT_TASK, get_task, planning_task

        given = dict(args.scorer)
        check_weights(given, planning_task(get_task(payload.get("task") or DEFAULT_TASK)),
                      "--scorer")
        planner_cfg.scorers = {**(planner_cfg.scorers or {}), **given}
    for name in ("candidates", "jumps", "sampler", "edm_steps", "dyn_weight", "critic_weight",
                 "velocities", "aim", "target_radius", "back_off"):
        value = getattr(args, name)
        if value is not None:
            setattr(planner_cfg, name, value)
    if args.target_radius == 0:  # off: the best-scored plan, aimed --aim steps ahead
        planner_cfg.target_radius = None
        planner_cfg.back_off = None  # nothing to back away from
    if args.back_off == 0:
        planner_cfg.back_off = None
    planner_cfg.compile = planner_cfg.compile or args.compile
    shipped = payload.get("defaults") or {}
    replan = (None if args.open_loop
              else args.replan if args.replan is not None else shipped.get("replan"))
    cfg = EvalConfig(
        env=env, checkpoint=path, episodes=args.episodes, seed=args.seed,
        num_envs=args.num_envs, multi_goal=args.multi_goal, replan=replan,
        cuda_graphs=args.cuda_graphs, device=args.device, planner=planner_cfg, out=args.out,
        plot=args.plot, progress=not args.no_progress,
    )
    shown: dict = {}

    def show(result: dict) -> None:  # before any file is written: a full disk loses nothing
        print(format_table(result), flush=True)
        shown.update(result)

    try:
        evaluate(cfg, Planner(payload, planner_cfg, args.device, source=path), show)
    except WriteFailed as exc:
        if not shown:
            raise
        if args.out and exc.path == Path(args.out):  # the JSON: print it instead
            print(json.dumps(shown, indent=2), flush=True)
            raise exc.keeping(f"the results are printed above, table and JSON; "
                              f"{exc.kept}") from None
        saved = f"and written to {args.out}" if args.out else "(table)"
        raise exc.keeping(f"the results are printed above {saved}; {exc.kept}") from None
    if args.out:
        print(f"results written to {args.out}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0
