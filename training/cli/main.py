"""`python -m training`: command-line entry points. Logic lives in the modules it calls."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence

from training.cli.data_flags import add_data_options, load_from_args, show_data_warnings
from training.cli.evaluate import add_evaluate
from training.cli.train import add_no_cache, add_train
from training.data import DataError, format_summary, summarize
from training.run_settings import run_settings

__all__ = [
    "Command",
    "build_parser",
    "main",
]

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def _cmd_data(args: argparse.Namespace) -> int:
    run = run_settings(store=args.store, data_root=args.data_root, use_cache=not args.no_cache)
    data = load_from_args(args.source, run, args)
    summary = summarize(data)
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="load a data source and print its summary",
        description="Load a MovieLens source and print users, movies, watches, density, "
        "top genres and the heaviest and lightest watchers.",
    )
    p.add_argument(
        "source",
        nargs="?",
        default="synthetic",
        help="synthetic[:users=N,movies=M,dim=D,seed=S] | a MovieLens release by name (ml-1m, "
        "ml-25m, ...) or PATH to its zip or folder | PATH to interactions .csv/.tsv/.parquet | "
        "tfds:movielens/1m-ratings | tfds:movielens/100k-ratings (default: synthetic)",
    )
    p.add_argument(
        "--data-root",
        help="folder holding named datasets ml-1m(.zip), ml-25m(.zip), ..., and the cache of "
        "parsed tfds data (env SHARDLENS_DATA_DIR, default var/data)",
    )
    p.add_argument(
        "--store",
        help="posterior store: holds the tfds cache when the data root is read-only "
        "(env SHARDLENS_STORE_DIR, default var/store)",
    )
    add_no_cache(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_options(p)
    p.set_defaults(handler=_cmd_data)


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data,
    add_train,
    add_evaluate,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for adder in _SUBCOMMANDS:
        adder(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.run.memory import MemoryWarning

    show_data_warnings(MemoryWarning)
    try:
        return args.handler(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the edge: unexpected failures exit 1 with a message
        traceback.print_exc()
        print(f"unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
