"""Raw interaction rows -> `WatchData`: what counts as a watch, and the k-core filter.

In order: `--min-rating` keeps ratings >= R; repeated (user, item) pairs collapse into one
watch (the latest, with timestamps); `--min-user-watches` / `--min-item-watches` drop users
with fewer watches and items with fewer watchers, repeatedly, until every remaining user
and item passes (the k-core). The report says what each step removed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.data.errors import DataError
from training.data.load_options import LoadOptions
from training.data.watch import Catalog, WatchData, build_watch_data, factorize

__all__ = ["Interactions", "to_watch_data"]


@dataclass(frozen=True, kw_only=True)
class Interactions:
    """Rows as read from a source, before any rule: one per rating (or interaction).

    users, items: ids, int64 or text [rows]; ratings: float64 [rows] or None; timestamps:
    int64 seconds [rows] or None; catalog: {item id: (title, genres)} or None.
    """

    source: str
    users: np.ndarray
    items: np.ndarray
    catalog: Catalog | None
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    report: dict[str, Any] = field(default_factory=dict)


def _k_core(
    users: np.ndarray, items: np.ndarray, min_user: int, min_item: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Alive masks over user and item codes after the k-core filter, and its rounds."""
    alive_u = np.ones(users.max(initial=-1) + 1, bool)
    alive_i = np.ones(items.max(initial=-1) + 1, bool)
    rounds = 0
    while True:
        live = alive_u[users] & alive_i[items]
        user_counts = np.bincount(users[live], minlength=alive_u.size)
        item_counts = np.bincount(items[live], minlength=alive_i.size)
        new_u = alive_u & (user_counts >= min_user)
        new_i = alive_i & (item_counts >= min_item)
        if (new_u == alive_u).all() and (new_i == alive_i).all():
            return alive_u, alive_i, rounds
        alive_u, alive_i = new_u, new_i
        rounds += 1


def to_watch_data(rows: Interactions, options: LoadOptions) -> WatchData:
    """Apply `options`' rules to `rows`; DataError when nothing is left (naming the rule)."""
    total = len(rows.users)
    report: dict[str, Any] = {**rows.report, "rows": total}
    keep = np.arange(total)
    if options.min_rating is not None:
        if rows.ratings is None:
            raise DataError(
                f"{rows.source}: --min-rating needs ratings, and this source has none "
                "(name the rating column with --rating-column)"
            )
        keep = np.flatnonzero(rows.ratings >= options.min_rating)
        report["min_rating"] = {"threshold": options.min_rating, "removed_rows": total - keep.size}
        if keep.size == 0:
            raise DataError(
                f"{rows.source}: no rating is >= {options.min_rating:g} (--min-rating), so "
                "there is nothing to fit; lower it"
            )
    rated = keep.size
    if options.min_user_watches > 1 or options.min_item_watches > 1:
        user_codes, _ = factorize(rows.users[keep])
        item_codes, item_uniques = factorize(rows.items[keep])
        width = max(1, item_uniques.size)
        pairs = np.sort(user_codes * width + item_codes)
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]  # distinct pairs
        report["duplicates_removed"] = int(rated - pairs.size)
        pair_users, pair_items = np.divmod(pairs, width)
        alive_u, alive_i, rounds = _k_core(
            pair_users, pair_items, options.min_user_watches, options.min_item_watches
        )
        survives = alive_u[user_codes] & alive_i[item_codes]
        kept_pairs = alive_u[pair_users] & alive_i[pair_items]
        report["k_core"] = {
            "min_user_watches": options.min_user_watches,
            "min_item_watches": options.min_item_watches,
            "rounds": rounds,
            "removed_users": int((~alive_u).sum()),
            "removed_items": int((~alive_i).sum()),
            "removed_watches": int((~kept_pairs).sum()),
        }
        keep = keep[survives]
        if keep.size == 0:
            raise DataError(
                f"{rows.source}: no user has {options.min_user_watches} watches of items "
                f"with {options.min_item_watches} watchers (--min-user-watches, "
                "--min-item-watches), so there is nothing to fit; lower them"
            )
    data = build_watch_data(
        source=rows.source,
        rating_user_ids=rows.users[keep],
        rating_movie_ids=rows.items[keep],
        movie_catalog=rows.catalog,
        rating_timestamps=None if rows.timestamps is None else rows.timestamps[keep],
        report=report,
    )
    if "duplicates_removed" in report:
        return data
    # Without the k-core, every repeat collapsed while building `data`.
    return dataclasses.replace(
        data, report={**report, "duplicates_removed": int(rated - data.num_watches)}
    )
