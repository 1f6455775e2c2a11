"""Held-out evaluation: split, metrics and rankers against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import DataError, SyntheticSpec, generate, load_source
from training.evaluation import (
    evaluate_posterior,
    holdout_split,
    pick_entropy_bits,
    posterior_scores,
    ranking_metrics,
    top_k,
)
from training.evaluation.plots import evaluation_pngs


def test_split_holds_out_a_fifth_per_user_and_is_seeded():
    data = generate(SyntheticSpec(num_users=80, num_movies=50, seed=2))
    split = holdout_split(data, fraction=0.2, seed=5)
    again = holdout_split(data, fraction=0.2, seed=5)
    assert np.array_equal(split.heldout_movies, again.heldout_movies)
    assert not np.array_equal(split.heldout_movies, holdout_split(data, seed=6).heldout_movies)
    full = data.dense()
    train = split.train.dense()
    assert train.shape == full.shape and not (train & ~full).any()
    for user in range(data.num_users):
        held = split.heldout(user)
        n = data.watch_counts[user]
        if n < 2:
            assert held.size == 0
            continue
        assert held.size == min(n - 1, max(1, round(0.2 * n)))
        assert full[user, held].all() and not train[user, held].any()
    assert split.train.num_watches + split.heldout_movies.size == data.num_watches


def test_latest_split_holds_out_the_newest_watches(ml100k_dir):
    data = load_source(str(ml100k_dir))
    split = holdout_split(data, strategy="latest")
    # User 196 (index 0) watched movie 3 at 881250949 and movie 4 at 880606923.
    assert split.heldout(0).tolist() == [data.movie_ids.tolist().index(3)]
    with pytest.raises(DataError, match="needs timestamps"):
        holdout_split(generate(SyntheticSpec(num_users=10, num_movies=10)), strategy="latest")
    with pytest.raises(DataError, match="between 0 and 1"):
        holdout_split(data, fraction=1.5)


def test_metrics_on_hand_made_rankings():
    ranked = np.arange(20)[None, :].repeat(2, axis=0)
    relevant = [np.array([0, 30]), np.array([15])]
    m = ranking_metrics(ranked, relevant)
    assert m["hr@10"].tolist() == [1.0, 0.0]
    assert m["recall@20"].tolist() == [0.5, 1.0]
    ideal = 1 / np.log2(2) + 1 / np.log2(3)
    assert m["ndcg@10"][0] == pytest.approx(1.0 / ideal)
    assert m["ndcg@10"][1] == 0.0


def test_metrics_with_fewer_movies_than_k():
    m = ranking_metrics(np.array([[3, 1, 0]]), [np.array([1])])
    assert m["hr@10"][0] == 1.0 and m["recall@20"][0] == 1.0
    assert m["ndcg@10"][0] == pytest.approx(1 / np.log2(3))


def test_top_k_skips_excluded_movies():
    scores = np.array([[0.9, 0.8, 0.1, 0.5]])
    excluded = np.array([[True, False, False, False]])
    assert top_k(scores, excluded, 2).tolist() == [[1, 3]]


def _samples_around_truth(data, draws=20, chains=2, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    t = data.truth
    parts = {
        "user_embeddings": t.user_embeddings,
        "user_bias": t.user_bias,
        "movie_embeddings": t.movie_embeddings,
        "movie_bias": t.movie_bias,
    }
    return {
        k: (v[None, None] + noise * rng.normal(size=(draws, chains, *v.shape))).astype(np.float32)
        for k, v in parts.items()
    }


def test_pick_counts_match_the_reference_loop():
    data = generate(SyntheticSpec(num_users=12, num_movies=15, latent_dim=2, seed=1))
    samples = _samples_around_truth(data, draws=5, noise=0.5)
    watched = data.dense()
    chunks = list(posterior_scores(samples, data, chunk_users=5, chunk_samples=3))
    counts = np.concatenate([c.pick_counts for c in chunks])
    for user in range(data.num_users):
        expected = np.zeros(data.num_movies, int)
        for s in range(5):
            for c in range(2):
                logits = (
                    samples["user_embeddings"][s, c, user] @ samples["movie_embeddings"][s, c].T
                    + samples["user_bias"][s, c, user]
                    + samples["movie_bias"][s, c]
                )
                for movie in np.argsort(logits)[::-1]:
                    if not watched[user, movie]:
                        expected[movie] += 1
                        break
        assert counts[user].tolist() == expected.tolist()
    assert pick_entropy_bits(np.array([[5, 5, 0], [10, 0, 0]])).tolist() == [1.0, 0.0]


def test_a_posterior_near_the_truth_beats_popularity():
    data = generate(SyntheticSpec(num_users=150, num_movies=80, latent_dim=3, seed=4))
    split = holdout_split(data, seed=0)
    samples = _samples_around_truth(data)
    result = evaluate_posterior(samples, split, full=data)
    rankers = result.report["rankers"]
    assert set(rankers) == {"posterior_mean", "pick_counts", "point_estimate", "popularity"}
    for name in rankers:
        assert set(rankers[name]) == {"hr@10", "recall@20", "ndcg@10"}
        assert all(0.0 <= v <= 1.0 for v in rankers[name].values())
    assert rankers["posterior_mean"]["ndcg@10"] > rankers["popularity"]["ndcg@10"]
    cal = result.report["calibration"]
    assert 0.0 < cal["brier"] < 0.25 and cal["positives"] == split.heldout_movies.size
    assert sum(cal["reliability"]["count"]) == cal["pairs"]
    pngs = evaluation_pngs(result)
    assert all(png.startswith(b"\x89PNG") for png in pngs.values())
