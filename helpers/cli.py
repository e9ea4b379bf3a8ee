"""Argument parsing for ``python -m helpers``; each sub-command is a thin call into the package."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_run(args) -> int:
    from helpers.runner import run_chain

    only = [s.strip().zfill(2) for s in args.only.split(",")] if args.only else None
    rows = run_chain(args.profile, only)
    total = sum(r["seconds"] for r in rows)
    print(f"chain '{args.profile}' finished: {len(rows)} notebook(s) in {total:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from helpers.runner import PROFILES

    parser = argparse.ArgumentParser(prog="python -m helpers",
                                     description="Latency-aware compression workbench for edge inference.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute the notebook chain with Papermill",
                       description="Execute notebooks/NN_*.ipynb in order with params/<profile>.yaml; "
                                   "executed copies go to runs/<profile>/.")
    p.add_argument("--profile", default="default", choices=PROFILES, help="parameter profile (default: default)")
    p.add_argument("--only", help="comma-separated notebook prefixes, e.g. 01,02")
    p.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; known errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
