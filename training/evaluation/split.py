"""A seeded per-user hold-out split of a watch matrix.

Per user with at least two watches, a share (default 20%, at least one) of their watched
movies is held out: chosen at random (`random`), or their latest watches when the source
has timestamps (`latest`). With `latest`, watches with equal timestamps are ordered at
random (seeded) within their group, never by file order; `HoldoutSplit.ties` counts the
users whose held-out set was cut through such a group. A source whose timestamps are all
equal has no "latest" and is refused. Users with a single watch stay entirely in training
and are not scored. The training matrix keeps the full user and movie index space, so a posterior
fitted on it scores every original movie.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import numpy as np

from training.data import DataError, WatchData

__all__ = [
    "TIE_SHARE",
    "HoldoutSplit",
    "SplitStrategy",
    "describe_ties",
    "holdout_split",
]

SplitStrategy = Literal["random", "latest"]
# A user's held-out boundary counts as tied when more than this share of their held-out
# watches was picked at random from a group of equal timestamps.
TIE_SHARE = 0.1


class HoldoutSplit(NamedTuple):
    """The training matrix and, per user, the held-out movie indices (CSR)."""

    train: WatchData
    heldout_indptr: np.ndarray  # int64 [users + 1]
    heldout_movies: np.ndarray  # int32 [held-out watches]
    ties: dict[str, Any] | None = None  # `latest` only: see `holdout_split`

    def heldout(self, user: int) -> np.ndarray:
        return self.heldout_movies[self.heldout_indptr[user] : self.heldout_indptr[user + 1]]

    @property
    def scored_users(self) -> np.ndarray:
        """Users with at least one held-out movie."""
        return np.flatnonzero(np.diff(self.heldout_indptr) > 0)


def holdout_split(
    data: WatchData,
    *,
    fraction: float = 0.2,
    strategy: SplitStrategy = "random",
    seed: int = 0,
) -> HoldoutSplit:
    """Split `data` into training watches and held-out watches per user.

    With `latest`, `ties` reports `users_cut_through_ties` (users whose boundary timestamp
    group was split between held-out and training), `users_over_share` (those where more
    than `TIE_SHARE` of the held-out watches were drawn from that group) and
    `heldout_chosen_at_random` (held-out watches so drawn). DataError when every timestamp
    is equal.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"holdout fraction must be between 0 and 1, got {fraction}")
    if strategy not in ("random", "latest"):
        raise DataError(f"unknown split {strategy!r}; choose 'random' or 'latest'")
    if strategy == "latest" and data.timestamps is None:
        raise DataError(
            f"split 'latest' needs timestamps, and {data.source} has none; use 'random'"
        )
    stamps = data.timestamps if strategy == "latest" else None
    if stamps is not None and stamps.size and stamps.min() == stamps.max():
        raise DataError(
            f"split 'latest' holds out each user's latest watches, but every watch in "
            f"{data.source} has the same timestamp ({stamps[0]}), so there is no latest; "
            "use --split random"
        )
    rng = np.random.default_rng(seed)
    starts = np.searchsorted(data.user_index, np.arange(data.num_users + 1))
    keep = np.ones(data.num_watches, bool)
    counts = np.zeros(data.num_users, np.int64)
    ties = {"users_cut_through_ties": 0, "users_over_share": 0, "heldout_chosen_at_random": 0}
    for user in range(data.num_users):
        lo, hi = starts[user], starts[user + 1]
        n = hi - lo
        if n < 2:
            continue
        take = min(n - 1, max(1, round(fraction * n)))
        if stamps is not None:
            t = stamps[lo:hi]
            # Newest first; equal timestamps in random (seeded) order.
            order = np.lexsort((rng.random(n), -t))
            boundary = t[order[take - 1]]
            tied_held = int((t[order[:take]] == boundary).sum())
            if int((t == boundary).sum()) > tied_held:
                ties["users_cut_through_ties"] += 1
                ties["heldout_chosen_at_random"] += tied_held
                ties["users_over_share"] += int(tied_held > TIE_SHARE * take)
        else:
            order = rng.permutation(n)
        keep[lo + order[:take]] = False
        counts[user] = take
    held = ~keep
    train = dataclasses.replace(
        data,
        source=f"{data.source} (train split: {strategy}, {fraction:g}, seed {seed})",
        user_index=data.user_index[keep],
        movie_index=data.movie_index[keep],
        timestamps=None if data.timestamps is None else data.timestamps[keep],
    )
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # Watches are sorted by user then movie, so held-out ones come out grouped by user.
    return HoldoutSplit(
        train,
        indptr,
        data.movie_index[held].astype(np.int32),
        ties={**ties, "share": TIE_SHARE} if stamps is not None else None,
    )


def describe_ties(ties: dict[str, Any] | None, *, scored_users: int) -> str | None:
    """A warning line when some users' held-out boundary was tied (None otherwise)."""
    if not ties or not ties["users_over_share"]:
        return None
    return (
        f"split 'latest': for {ties['users_over_share']:,} of {scored_users:,} users more than "
        f"{ties['share']:.0%} of the held-out watches tie with training watches on the "
        f"boundary timestamp ({ties['heldout_chosen_at_random']:,} held-out watches in "
        f"{ties['users_cut_through_ties']:,} users were picked at random among equal "
        "timestamps, seeded by --seed)"
    )
