"""Pure scoring against a direct NumPy computation of the reference procedure."""

from __future__ import annotations

import numpy as np
import pytest

from app.serving.recommend import (
    NO_PICK,
    build_catalog,
    candidate_mask,
    movie_major_samples,
    picks_for_user,
    precompute_user_scores,
    recommend,
    summarize_picks,
    union_picks,
)
from common.foldin import fold_in_layout
from storage.posterior import open_posterior
from tests.helpers.app_helpers import publish, reference_picks, tiny_data


@pytest.fixture(scope="module")
def posterior(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    published = publish(store, tiny_data(num_users=25, num_movies=20), draws=5, chains=3)
    return published, open_posterior(store)


def precompute_picks(**kwargs):
    return precompute_user_scores(**kwargs).picks


def reference_mean_probability(samples, user):
    """sigmoid(U.V + u + v) averaged over samples, literally, [M] float64."""
    total = 0.0
    s, c = samples["user_bias"].shape[:2]
    for draw in range(s):
        for chain in range(c):
            logits = (
                samples["movie_embeddings"][draw, chain]
                @ samples["user_embeddings"][draw, chain, user]
                + samples["user_bias"][draw, chain, user]
                + samples["movie_bias"][draw, chain]
            ).astype(np.float64)
            total = total + 1 / (1 + np.exp(-logits))
    return total / (s * c)


def test_precomputed_picks_and_probabilities_follow_the_reference(posterior):
    published, version = posterior
    catalog = build_catalog(version.genres)
    scores = precompute_user_scores(
        num_users=version.num_users,
        user_samples=version.user_samples,
        watched=version.watched,
        movie_embeddings=version.movie_embeddings,
        movie_bias=version.movie_bias,
        genre_members=catalog.genre_members(),
        chunk_users=7,  # several chunks, the last one partial
    )
    picks = scores.picks
    assert picks.shape == (25, 15) and picks.dtype == np.int16
    assert scores.mean_probability.shape == (25, 20)
    assert scores.genre_picks is not None
    assert scores.genre_picks.shape == (25, len(catalog.filter_genres), 15)
    emptied = 0
    for user in range(version.num_users):
        assert picks[user].tolist() == reference_picks(published.samples, published.data, user)
        np.testing.assert_allclose(
            scores.mean_probability[user],
            reference_mean_probability(published.samples, user),
            rtol=1e-4,
            atol=1e-6,  # float32 accumulation
        )
        for g, genre in enumerate(catalog.filter_genres):
            allowed = catalog.genre_sets[genre]
            expected = reference_picks(published.samples, published.data, user, allowed)
            if expected:
                assert scores.genre_picks[user, g].tolist() == expected, (user, genre)
            else:  # the user watched every movie of the genre
                assert (scores.genre_picks[user, g] == NO_PICK).all()
                emptied += 1
    assert emptied > 0  # the no-pick case was exercised


def test_without_genres_no_genre_picks_are_made(posterior):
    _, version = posterior
    scores = precompute_user_scores(
        num_users=version.num_users,
        user_samples=version.user_samples,
        watched=version.watched,
        movie_embeddings=version.movie_embeddings,
        movie_bias=version.movie_bias,
    )
    assert scores.genre_picks is None


@pytest.fixture(scope="module")
def precomputed(posterior):
    _, version = posterior
    catalog = build_catalog(version.genres)
    scores = precompute_user_scores(
        num_users=version.num_users,
        user_samples=version.user_samples,
        watched=version.watched,
        movie_embeddings=version.movie_embeddings,
        movie_bias=version.movie_bias,
        genre_members=catalog.genre_members(),
    )
    layout = fold_in_layout(version.movie_embeddings, version.movie_bias)
    movie_major = movie_major_samples(version.movie_embeddings, version.movie_bias)
    return catalog, scores, layout, movie_major


def test_genre_restricted_picks_follow_the_reference(posterior, precomputed):
    published, version = posterior
    catalog, scores, layout, movie_major = precomputed
    shortcuts = 0
    for g, genre in enumerate(catalog.filter_genres):  # rare genres read movie-major blocks
        allowed = candidate_mask(catalog, [genre], version.num_movies)
        for user in range(version.num_users):
            eligible = allowed.copy()
            eligible[version.watched(user)] = False
            emb, _ = version.user_samples(user)
            expected = reference_picks(published.samples, published.data, user, allowed)
            for base, major in (
                (None, None),
                (scores.picks[user], None),
                (None, movie_major),
                (scores.picks[user], movie_major),
                (scores.genre_picks[user, g], None),
            ):
                picks = picks_for_user(
                    user_embeddings=emb,
                    movie_features=layout.features,
                    movie_bias=layout.offsets,
                    eligible=eligible,
                    superset_picks=base,
                    movie_major=major,
                )
                if not eligible.any():
                    assert (picks == NO_PICK).all()
                else:
                    assert picks.tolist() == expected, (genre, user)
                    assert all(genre in version.genres[j] for j in picks)
            shortcuts += int(allowed[scores.picks[user]].mean() > 0.5)
    assert shortcuts > 0  # the shortcut path was exercised


def test_union_of_genres_from_their_picks_follows_the_reference(posterior, precomputed):
    published, version = posterior
    catalog, scores, _, movie_major = precomputed
    genres = catalog.filter_genres
    combos = [(a, b) for i, a in enumerate(genres) for b in genres[i + 1 :]] + [genres]
    for combo in combos:
        allowed = candidate_mask(catalog, combo, version.num_movies)
        columns = [genres.index(g) for g in combo]
        for user in range(version.num_users):
            emb, _ = version.user_samples(user)
            picks = union_picks(scores.genre_picks[user, columns], emb, movie_major)
            expected = reference_picks(published.samples, published.data, user, allowed)
            if expected:
                assert picks.tolist() == expected, (combo, user)
            else:
                assert (picks == NO_PICK).all()


def test_exclusions_within_a_genre_follow_the_reference(posterior, precomputed):
    """A genre's precomputed picks are a superset start: only the samples whose pick was
    excluded are scored again."""
    published, version = posterior
    catalog, scores, layout, _ = precomputed
    rescored = 0
    for g, genre in enumerate(catalog.filter_genres):
        for user in range(version.num_users):
            genre_picks = scores.genre_picks[user, g]
            if (genre_picks == NO_PICK).all():
                continue
            top = np.bincount(genre_picks[genre_picks >= 0]).argmax()  # drop the most picked
            allowed = catalog.genre_sets[genre].copy()
            allowed[top] = False
            eligible = allowed.copy()
            eligible[version.watched(user)] = False
            emb, _ = version.user_samples(user)
            picks = picks_for_user(
                user_embeddings=emb,
                movie_features=layout.features,
                movie_bias=layout.offsets,
                eligible=eligible,
                superset_picks=genre_picks,
            )
            expected = reference_picks(published.samples, published.data, user, allowed)
            if eligible.any():
                assert picks.tolist() == expected, (genre, user)
                rescored += 1
            else:
                assert (picks == NO_PICK).all()
    assert rescored > 0


def test_summary_counts_genres_and_uncertainty():
    catalog = build_catalog([("Drama",), ("Comedy", "Drama"), ("Drama", "War"), ("Horror",)])
    picks = np.array([2, 0, 2, 1, 2, 0, NO_PICK, 1], dtype=np.int16)
    counts, genres, unc, picked = summarize_picks(picks, catalog=catalog, num_movies=4)
    assert counts.tolist() == [2, 2, 3, 0]
    assert picked == 7
    assert [(g.genre, g.votes) for g in genres] == [("Drama", 5), ("Comedy", 2)]
    assert genres[0].share == pytest.approx(5 / 8)
    p = np.array([3, 2, 2]) / 7
    assert unc.entropy_bits == pytest.approx(-(p * np.log2(p)).sum())
    assert unc.distinct_picks == 3 and unc.top_share == pytest.approx(3 / 8)


def test_no_candidate_means_null_entropy():
    catalog = build_catalog([("Drama",), ("Comedy",)])
    counts, genres, unc, picked = summarize_picks(
        np.full(5, NO_PICK, np.int16), catalog=catalog, num_movies=2
    )
    assert counts.tolist() == [0, 0] and genres == [] and picked == 0
    assert unc.entropy_bits is None and unc.distinct_picks == 0 and unc.top_share == 0.0


@pytest.mark.parametrize("rank", ["picks", "probability"])
def test_recommend_returns_k_movies_picked_first_then_by_probability(posterior, precomputed, rank):
    published, version = posterior
    catalog, scores, _, movie_major = precomputed
    for user in range(version.num_users):
        emb, bias = version.user_samples(user)
        candidates = np.ones(version.num_movies, bool)
        candidates[version.watched(user)] = False
        result = recommend(
            scores.picks[user],
            catalog=catalog,
            user_embeddings=emb,
            user_bias=bias,
            movie_major=movie_major,
            mean_probability=scores.mean_probability[user],
            candidates=candidates,
            rank=rank,
            k=100,
        )
        recs = result.recommendations
        assert len(recs) == candidates.sum() == result.num_candidates  # k is a count
        picks = reference_picks(published.samples, published.data, user)
        mean = reference_mean_probability(published.samples, user)
        for r in recs:
            assert r.votes == picks.count(r.movie_index)
            assert r.probability_mean == pytest.approx(mean[r.movie_index], rel=1e-4, abs=1e-6)
        if rank == "picks":
            keys = [(-r.votes, -r.probability_mean) for r in recs]
        else:
            keys = [-r.probability_mean for r in recs]
        assert keys == sorted(keys)


def test_probabilities_match_direct_computation(posterior):
    published, version = posterior
    user = 3
    emb, bias = version.user_samples(user)
    result = recommend(
        precompute_picks(
            num_users=version.num_users,
            user_samples=version.user_samples,
            watched=version.watched,
            movie_embeddings=version.movie_embeddings,
            movie_bias=version.movie_bias,
        )[user],
        catalog=build_catalog(version.genres),
        user_embeddings=emb,
        user_bias=bias,
        movie_major=movie_major_samples(version.movie_embeddings, version.movie_bias),
        mean_probability=reference_mean_probability(published.samples, user),
        candidates=np.isin(np.arange(version.num_movies), version.watched(user), invert=True),
        rank="picks",
        k=3,
    )
    assert len(result.recommendations) == 3
    s = published.samples
    for rec in result.recommendations:
        j = rec.movie_index
        logits = (
            np.einsum(
                "scd,scd->sc", s["movie_embeddings"][:, :, j], s["user_embeddings"][:, :, user]
            )
            + s["user_bias"][:, :, user]
            + s["movie_bias"][:, :, j]
        ).ravel()
        prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
        assert rec.probability_mean == pytest.approx(prob.mean(), rel=1e-5)
        assert rec.votes == reference_picks(s, published.data, user).count(j)
        assert rec.probability_low == pytest.approx(np.percentile(prob, 5), rel=1e-5)
        assert rec.probability_high == pytest.approx(np.percentile(prob, 95), rel=1e-5)
        assert rec.probability_low <= rec.probability_mean <= rec.probability_high


def test_a_user_who_watched_everything_gets_no_picks():
    movie_embeddings = np.ones((4, 3, 2), np.float32)
    users = np.ones((2, 4, 2), np.float32)
    picks = precompute_picks(
        num_users=2,
        user_samples=lambda i: (users[i], np.zeros(4, np.float32)),
        watched=lambda i: np.arange(3) if i == 0 else np.array([1]),
        movie_embeddings=movie_embeddings,
        movie_bias=np.zeros((4, 3), np.float32),
    )
    assert (picks[0] == NO_PICK).all() and set(picks[1].tolist()) <= {0, 2}
