"""`--split latest` with equal timestamps: random (seeded) within the tie, reported, and
refused when every timestamp is equal."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import DataError
from training.data.watch import build_watch_data
from training.evaluation.split import describe_ties, holdout_split


def _data(times_per_user: list[list[int]]):
    users, movies, times = [], [], []
    for u, stamps in enumerate(times_per_user):
        for j, t in enumerate(stamps):
            users.append(u)
            movies.append(j)
            times.append(t)
    return build_watch_data(
        source="ties",
        rating_user_ids=np.array(users),
        rating_movie_ids=np.array(movies),
        movie_catalog=None,
        rating_timestamps=np.array(times),
    )


def test_ties_are_broken_at_random_not_by_file_order():
    # One newest watch, then nine tied ones: 20% of 10 = 2 held out, one from the tie.
    data = _data([[100] * 9 + [200]])
    picks = set()
    for seed in range(12):
        held = holdout_split(data, strategy="latest", seed=seed).heldout(0).tolist()
        assert 9 in held and len(held) == 2  # the newest is always held out
        picks.add(next(m for m in held if m != 9))
        again = holdout_split(data, strategy="latest", seed=seed).heldout(0).tolist()
        assert again == held  # seeded
    assert len(picks) > 3  # not the file's order: several tied movies get picked


def test_a_tied_boundary_is_reported_with_counts():
    data = _data([[100] * 9 + [200], list(range(10)), [5, 5, 6, 7, 8]])
    split = holdout_split(data, strategy="latest", seed=0)
    assert split.ties == {
        "users_cut_through_ties": 1,  # user 0 only: users 1 and 2 have no tie at the cut
        "users_over_share": 1,  # 1 of its 2 held-out watches came from the tie: > 10%
        "heldout_chosen_at_random": 1,
        "share": 0.1,
    }
    line = describe_ties(split.ties, scored_users=int(split.scored_users.size))
    assert line is not None and "for 1 of 3 users more than 10%" in line
    clean = holdout_split(_data([list(range(10))]), strategy="latest", seed=0)
    assert clean.ties["users_over_share"] == 0
    assert describe_ties(clean.ties, scored_users=1) is None
    assert holdout_split(data, strategy="random", seed=0).ties is None


def test_all_equal_timestamps_are_refused_for_latest():
    data = _data([[7, 7, 7], [7, 7]])
    with pytest.raises(DataError, match=r"every watch in ties has the same timestamp \(7\)"):
        holdout_split(data, strategy="latest")
    assert holdout_split(data, strategy="random").heldout_movies.size == 2
