"""A seeded per-user hold-out split of a watch matrix.

Per user with at least two watches, a share (default 20%, at least one) of their watched
movies is held out: chosen at random (`random`), or their latest watches when the source
has timestamps (`latest`). Users with a single watch stay entirely in training and are not
scored. The training matrix keeps the full user and movie index space, so a posterior
fitted on it scores every original movie.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import numpy as np

from training.data import DataError, WatchData

SplitStrategy = Literal["random", "latest"]


class HoldoutSplit(NamedTuple):
    """The training matrix and, per user, the held-out movie indices (CSR)."""

    train: WatchData
    heldout_indptr: np.ndarray  # int64 [users + 1]
    heldout_movies: np.ndarray  # int32 [held-out watches]

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
    """Split `data` into training watches and held-out watches per user."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"holdout fraction must be between 0 and 1, got {fraction}")
    if strategy not in ("random", "latest"):
        raise DataError(f"unknown split {strategy!r}; choose 'random' or 'latest'")
    if strategy == "latest" and data.timestamps is None:
        raise DataError(
            f"split 'latest' needs timestamps, and {data.source} has none; use 'random'"
        )
    rng = np.random.default_rng(seed)
    starts = np.searchsorted(data.user_index, np.arange(data.num_users + 1))
    keep = np.ones(data.num_watches, bool)
    counts = np.zeros(data.num_users, np.int64)
    for user in range(data.num_users):
        lo, hi = starts[user], starts[user + 1]
        n = hi - lo
        if n < 2:
            continue
        take = min(n - 1, max(1, round(fraction * n)))
        if data.timestamps is not None and strategy == "latest":
            order = np.argsort(data.timestamps[lo:hi], kind="stable")[::-1]
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
    return HoldoutSplit(train, indptr, data.movie_index[held].astype(np.int32))
