"""A short, JSON-ready description of a `WatchData` value."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from training.data.watch import WatchData

__all__ = ["describe_filters", "format_summary", "summarize"]


def summarize(data: WatchData, *, top: int = 5) -> dict[str, Any]:
    """Users, movies, watches, density, commonest genres, heaviest and lightest watchers."""
    counts = data.watch_counts
    order = np.argsort(-counts, kind="stable")
    genre_counts = Counter(data.first_genre)

    def watchers(indices: np.ndarray) -> list[dict[str, Any]]:
        return [{"user_id": str(data.user_ids[i]), "watched": int(counts[i])} for i in indices]

    return {
        "source": data.source,
        "users": data.num_users,
        "movies": data.num_movies,
        "watches": data.num_watches,
        "density": round(data.density, 6),
        "watches_per_user": {
            "min": int(counts.min()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
        },
        "top_genres": [{"genre": g, "movies": n} for g, n in genre_counts.most_common(top)],
        "heaviest_watchers": watchers(order[:top]),
        "lightest_watchers": watchers(order[::-1][:top]),
        "ids": {"users": data.user_id_kind, "movies": data.movie_id_kind},
        "filters": dict(data.report),
        "fingerprint": data.fingerprint(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text for `summarize`'s output."""
    lines = [
        f"source    {summary['source']}",
        f"users     {summary['users']:,}",
        f"movies    {summary['movies']:,}",
        f"watches   {summary['watches']:,}  (density {summary['density']:.2%})",
        "per user  min {min}, median {median:g}, max {max}".format(**summary["watches_per_user"]),
        "genres    " + ", ".join(f"{g['genre']} ({g['movies']})" for g in summary["top_genres"]),
        "heaviest  "
        + ", ".join(f"user {w['user_id']}: {w['watched']}" for w in summary["heaviest_watchers"]),
        "lightest  "
        + ", ".join(f"user {w['user_id']}: {w['watched']}" for w in summary["lightest_watchers"]),
    ]
    filters = summary.get("filters") or {}
    if filters:
        lines.append("loaded    " + describe_filters(filters))
    return "\n".join(lines)


def describe_filters(report: dict[str, Any]) -> str:
    """One line saying what each loading rule removed (`WatchData.report`)."""
    parts = [f"{report.get('rows', 0):,} rows"]
    if "min_rating" in report:
        r = report["min_rating"]
        parts.append(f"--min-rating {r['threshold']:g} removed {r['removed_rows']:,} rows")
    if "duplicates_removed" in report:
        parts.append(f"{report['duplicates_removed']:,} repeated (user, movie) rows collapsed")
    if "k_core" in report:
        k = report["k_core"]
        parts.append(
            f"k-core (users >= {k['min_user_watches']}, movies >= {k['min_item_watches']} "
            f"watches, {k['rounds']} rounds) removed {k['removed_users']:,} users, "
            f"{k['removed_items']:,} movies, {k['removed_watches']:,} watches"
        )
    return "; ".join(parts)
