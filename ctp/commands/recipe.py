"""``ctp recipe FILE``: run a planner's recipe end to end (data -> ... -> evaluate)."""

from __future__ import annotations

import argparse

from ctp.commands import add_threads_option, apply_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    text = ("run a recipe (configs/<task>/<name>.toml) end to end: data, teacher, pairs, "
            "student, critic, value, invdyn, bundle, evaluate; rerun to resume")
    p = sub.add_parser("recipe", help=text, description=(
        f"{text}. Finished stages are skipped, an interrupted one resumes, and a training "
        "stage's max_minutes is its budget over all attempts. The run folder records the "
        "recipe and refuses a changed setting of a stage that has made outputs (or of one "
        "before it); stages that have not run take new settings."))
    p.add_argument("file", metavar="FILE", help="recipe file, e.g. configs/pointmaze/umaze.toml")
    p.add_argument("--out", help="run folder (default: the recipe's 'out')")
    p.add_argument("--until", metavar="STAGE",
                   help="stop after this stage (data, teacher, pairs, student, critic, value, "
                        "invdyn, select, bundle, evaluate)")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override one recipe option, e.g. --set teacher.steps=2000 (repeatable)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars and the line before each stage")
    add_threads_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ctp.recipe.config import load_recipe, parse_override
    from ctp.recipe.run import run_recipe

    apply_threads(args.threads)
    recipe = load_recipe(args.file, dict(parse_override(text) for text in args.set))
    stages = run_recipe(recipe, args.out, args.until, progress=not args.no_progress)
    total = sum(stage["seconds"] for stage in stages.values())
    for name, stage in stages.items():
        print(f"{name:<9} {stage['seconds'] / 60:7.1f} min")
    print(f"{'total':<9} {total / 60:7.1f} min ({args.out or recipe.out})")
    return 0
