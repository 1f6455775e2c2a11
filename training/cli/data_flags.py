"""The data-loading flags shared by `python -m training data|train|evaluate` (argparse only)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, TextIO

from training.data import load_source
from training.data.errors import DataWarning
from training.data.load_options import ID_TYPES, LoadOptions
from training.data.watch import WatchData
from training.run_settings import RunSettings

__all__ = ["add_data_options", "load_from_args", "options_from_args", "show_data_warnings"]


def add_data_options(p: argparse.ArgumentParser) -> None:
    """--min-rating, the k-core flags and the generic-file flags."""
    g = p.add_argument_group(
        "what counts as a watch",
        "A rating is a watch (repeated pairs count once); these rules are applied in order, "
        "and the data summary says what each removed.",
    )
    g.add_argument("--min-rating", type=float, help="a watch is a rating >= this (default: any)")
    g.add_argument(
        "--min-user-watches",
        type=int,
        default=1,
        help="k-core: drop users with fewer watches, repeatedly (default 1: keep all)",
    )
    g.add_argument(
        "--min-item-watches",
        type=int,
        default=1,
        help="k-core: drop movies/items with fewer watchers, repeatedly (default 1: keep all)",
    )
    g = p.add_argument_group(
        "interactions files (--data FILE.csv|.tsv|.parquet)",
        "Columns are found by name: user (user, user_id, userId), item (item, item_id, "
        "movie, movie_id, movieId), optional rating and timestamp (seconds or ISO 8601).",
    )
    g.add_argument("--items", help="items file with item, title and genres ('|'-separated) columns")
    g.add_argument("--user-column", help="name of the user id column")
    g.add_argument("--item-column", help="name of the item id column (also in --items)")
    g.add_argument("--rating-column", help="name of the rating column")
    g.add_argument("--timestamp-column", help="name of the timestamp column")
    g.add_argument(
        "--id-type",
        choices=ID_TYPES,
        default="auto",
        help="ids are numbers when every value is a decimal integer without leading zeros "
        "(auto, the default), always text (str), or must be integers (int)",
    )


def options_from_args(args: argparse.Namespace) -> LoadOptions:
    """The `LoadOptions` the flags describe."""
    return LoadOptions(
        min_rating=args.min_rating,
        min_user_watches=args.min_user_watches,
        min_item_watches=args.min_item_watches,
        items=args.items,
        user_column=args.user_column,
        item_column=args.item_column,
        rating_column=args.rating_column,
        timestamp_column=args.timestamp_column,
        id_type=args.id_type,
    ).validate()


def show_data_warnings(*also: type[Warning], stream: TextIO | None = None) -> None:
    """Print every `DataWarning` (and warning of the `also` categories) as one
    `warning: ...` line on stderr (not Python's file:line form), each time it is raised."""
    original = warnings.showwarning
    if getattr(original, "data_warnings", False):
        return
    categories: tuple[type[Warning], ...] = (DataWarning, *also)

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, categories):
            print(f"warning: {message}", file=stream or sys.stderr, flush=True)
        else:
            original(message, category, *args, **kwargs)

    show.data_warnings = True  # type: ignore[attr-defined]
    warnings.showwarning = show
    for category in categories:
        warnings.simplefilter("always", category)


def load_from_args(source: str, run: RunSettings, args: argparse.Namespace) -> WatchData:
    """`source` loaded with the data flags in `args`, from the run's data root (and its
    store's tfds cache); DataError when it cannot be read."""
    return load_source(
        source,
        data_root=run.data_root,
        options=options_from_args(args),
        store=run.store,
        use_cache=run.use_cache,
    )
