"""``ctp compare BASE.json NEW.json``: two ``ctp plan --out`` results, paired by episode seed."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    text = ("compare two 'ctp plan --out' results on their common episode seeds: each "
            "score and the paired difference NEW - BASE (mean +- SE over seeds)")
    p = sub.add_parser("compare", help=text, description=text)
    p.add_argument("base", metavar="BASE.json", help="the reference evaluation")
    p.add_argument("new", metavar="NEW.json", help="the evaluation compared with it")
    p.add_argument("--out", help="write the comparison as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ctp.evaluation.comparison import compare_results, format_comparison, load_result
    from ctp.utils.atomic import write_json
    from ctp.utils.validation import check_output

    if args.out:
        check_output("--out", args.out, {"BASE.json": args.base, "NEW.json": args.new})
    comparison = compare_results(load_result(args.base), load_result(args.new),
                                 names=(args.base, args.new))
    print(format_comparison(comparison))
    if args.out:
        write_json(args.out, comparison)
        print(f"comparison written to {args.out}")
    return 0
