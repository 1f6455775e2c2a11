"""Pick counts, entropy, probability summaries and rankings against literal loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.picks import (
    NO_PICK,
    count_picks,
    pick_entropy_bits,
    probability_summary,
    rank_movies,
    top_unwatched,
    user_pick_entropy_bits,
)


def loop_picks(logits: np.ndarray, blocked: np.ndarray) -> list[int]:
    """The reference, literally: per sample, sort descending (stable), first not blocked."""
    picks = []
    for row in logits:
        pick = NO_PICK
        for j in np.argsort(-row, kind="stable"):
            if not blocked[j]:
                pick = int(j)
                break
        picks.append(pick)
    return picks


def tied_logits(rng: np.random.Generator, samples: int, movies: int) -> np.ndarray:
    """Logits on a coarse grid, so many samples have tied top movies."""
    return rng.integers(0, 4, size=(samples, movies)).astype(np.float32)


def test_picks_and_counts_match_the_loop_with_ties():
    rng = np.random.default_rng(0)
    logits = tied_logits(rng, 200, 9)
    blocked = np.zeros(9, dtype=bool)
    blocked[[0, 4]] = True
    picks = top_unwatched(logits, blocked)
    assert picks.tolist() == loop_picks(logits, blocked)
    counts = count_picks(picks, 9)
    expected = [sum(p == j for p in loop_picks(logits, blocked)) for j in range(9)]
    assert counts.tolist() == expected
    assert counts[[0, 4]].tolist() == [0, 0]


def test_every_movie_blocked_gives_no_pick_and_null_entropy():
    logits = np.ones((5, 3))
    picks = top_unwatched(logits, np.ones(3, dtype=bool))
    assert picks.tolist() == [NO_PICK] * 5
    counts = count_picks(picks, 3)
    assert counts.tolist() == [0, 0, 0]
    assert math.isnan(pick_entropy_bits(counts))


def test_counts_keep_the_user_axis_and_skip_no_pick():
    picks = np.array([[0, 0, 2, NO_PICK], [1, 1, 1, 1]])
    assert count_picks(picks, 3).tolist() == [[2, 0, 1], [0, 4, 0]]


def test_entropy_matches_the_definition():
    counts = np.array([[5, 5, 0], [10, 0, 0], [1, 2, 5]])
    loop = []
    for row in counts:
        total = row.sum()
        loop.append(sum(-(c / total) * math.log2(c / total) for c in row if c))
    assert pick_entropy_bits(counts) == pytest.approx(loop)
    assert pick_entropy_bits(counts)[1] == 0.0 and not np.signbit(pick_entropy_bits(counts)[1])


def test_probability_summary_matches_numpy_quantiles_including_tails():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(7, 101))
    logits[0] = 40.0  # saturated: every sample says 1
    logits[1, :50] = -40.0  # bimodal
    mean, low, high = probability_summary(logits, interval=0.9)
    probs = 1 / (1 + np.exp(-logits))
    for m in range(7):
        assert mean[m] == pytest.approx(probs[m].mean(), abs=1e-12)
        assert low[m] == pytest.approx(np.quantile(probs[m], 0.05), abs=1e-12)
        assert high[m] == pytest.approx(np.quantile(probs[m], 0.95), abs=1e-12)
    assert low[0] == high[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="interval"):
        probability_summary(logits, interval=1.0)


def loop_rank(candidates, counts, prob, rank, k):
    items = [j for j in range(len(candidates)) if candidates[j]]
    if rank == "picks":
        items.sort(key=lambda j: (-counts[j], -prob[j], j))
    else:
        items.sort(key=lambda j: (-prob[j], j))
    return items[:k]


@pytest.mark.parametrize("rank", ["picks", "probability"])
@pytest.mark.parametrize("k", [0, 1, 3, 7, 12, 40])
def test_ranking_matches_a_sort_with_ties_and_zero_count_tails(rank, k):
    rng = np.random.default_rng(k)
    movies = 30
    counts = np.zeros(movies, dtype=np.int64)
    counts[rng.choice(movies, 6, replace=False)] = rng.integers(1, 3, size=6)  # ties in counts
    prob = rng.integers(0, 5, size=movies) / 5.0  # ties in probability
    candidates = rng.random(movies) < 0.6
    got = rank_movies(candidates, counts=counts, mean_probability=prob, rank=rank, k=k)
    assert got.tolist() == loop_rank(candidates, counts, prob, rank, k)
    assert len(got) == min(k, int(candidates.sum()))


def test_ranking_rejects_unknown_modes():
    with pytest.raises(ValueError, match="rank"):
        rank_movies(
            np.ones(2, bool), counts=np.zeros(2), mean_probability=np.zeros(2), rank="x", k=1
        )  # type: ignore[arg-type]


def test_user_pick_entropies_equal_the_counts_formula_row_by_row():
    rng = np.random.default_rng(3)
    picks = rng.integers(-1, 7, size=(41, 23)).astype(np.int16)
    picks[5] = -1  # no candidate left in any sample
    picks[6] = 4  # every sample agrees
    got = user_pick_entropy_bits(picks, chunk_users=8)  # several chunks, the last partial
    expected = pick_entropy_bits(count_picks(picks, 7))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(got[5]) and got[6] == 0.0
