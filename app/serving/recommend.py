"""Pure scoring: posterior samples x one user -> ranked movies, pick counts, genres, uncertainty.

The procedure follows the reference. For every posterior sample k (k = s * C + c), movies are
ranked by U_k . V_kj + u_k + v_kj and the top-ranked candidate the user has not watched is
that sample's *pick*; the picks are then counted across samples. The user bias u_k is the
same for every movie, so it never changes a pick; it only enters the watch probabilities.
Counting, entropy, probability summaries and the ranking itself are `common.picks` (shared
with the held-out evaluation); this module adds the serving-side precomputation and layout.

Every user's unfiltered picks, picks within each genre and posterior-mean watch probabilities
are computed once per posterior version (`precompute_user_scores`). A request with exclusions
or several genres starts from those and scores only the samples whose precomputed pick it
rules out (`picks_for_user`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from common.picks import (
    NO_PICK,
    Rank,
    count_picks,
    pick_entropy_bits,
    probability_summary,
    rank_movies,
)


class Catalog(NamedTuple):
    """Per-version movie metadata in the shapes scoring needs."""

    first_genre_code: np.ndarray  # int32 [M], index into genre_names
    genre_names: tuple[str, ...]  # distinct first genres, sorted
    genre_sets: dict[str, np.ndarray]  # genre -> bool [M]: movies with that genre (any position)
    filter_genres: tuple[str, ...]  # sorted keys of genre_sets: the axis of genre picks

    def genre_members(self) -> list[np.ndarray]:
        """Each filter genre's movie indices (ascending int64), in `filter_genres` order."""
        return [np.flatnonzero(self.genre_sets[g]) for g in self.filter_genres]


class Recommendation(NamedTuple):
    movie_index: int
    votes: int  # samples that picked it (0: no sample did)
    share: float
    probability_mean: float
    probability_low: float  # 5th percentile over samples
    probability_high: float  # 95th percentile over samples


class GenreVote(NamedTuple):
    """One genre's votes: how many samples picked a movie whose first genre it is."""

    genre: str
    votes: int  # samples that picked it
    share: float


class PickSpread(NamedTuple):
    """How the samples' picks spread over movies (the API's `uncertainty`, app.schemas)."""

    entropy_bits: float | None  # None: no sample had a candidate, so there is no distribution
    distinct_picks: int
    top_share: float


class RecommendationResult(NamedTuple):
    num_samples: int
    num_picked: int  # samples that had an eligible movie
    num_candidates: int  # unwatched movies left after the genre filter and exclusions
    recommendations: list[Recommendation]
    genres: list[GenreVote]
    uncertainty: PickSpread


def build_catalog(genres: Sequence[Sequence[str]]) -> Catalog:
    """Index the movies' genres: first-genre codes and one membership mask per genre."""
    first = [g[0] for g in genres]
    names = tuple(sorted(set(first)))
    lookup = {name: i for i, name in enumerate(names)}
    codes = np.fromiter((lookup[g] for g in first), dtype=np.int32, count=len(first))
    members: dict[str, list[int]] = {}
    for j, movie_genres in enumerate(genres):
        for g in movie_genres:
            members.setdefault(g, []).append(j)
    sets = {}
    for g, movies in members.items():
        mask = np.zeros(len(genres), dtype=bool)
        mask[movies] = True
        sets[g] = mask
    return Catalog(codes, names, sets, tuple(sorted(sets)))


def candidate_mask(catalog: Catalog, genres: Sequence[str], num_movies: int) -> np.ndarray:
    """Movies with at least one of `genres` (bool [M]); unknown-to-this-version genres add none."""
    mask = np.zeros(num_movies, dtype=bool)
    for g in genres:
        found = catalog.genre_sets.get(g)
        if found is not None:
            mask |= found
    return mask


def pick_dtype(num_movies: int) -> np.dtype:
    """The smallest signed dtype that holds a movie index and NO_PICK."""
    return np.dtype(np.int16 if num_movies < 2**15 else np.int32)


class UserScores(NamedTuple):
    """What every request reads, precomputed per version."""

    picks: np.ndarray  # [N, S*C] unfiltered pick per user and sample (int16 when M < 32768)
    mean_probability: np.ndarray  # float32 [N, M]: posterior mean of sigmoid(U.V + u + v)
    genre_picks: np.ndarray | None  # [N, G, S*C] pick among each genre's movies, or None


class _GenreLayout(NamedTuple):
    """Genres' movies side by side: movie `order[p]` at column p, genre g in columns
    `bounds[g]:bounds[g + 1]` (a movie of several genres appears once per genre)."""

    order: np.ndarray  # int64 [P]
    bounds: np.ndarray  # int64 [G + 1]

    @classmethod
    def of(cls, members: Sequence[np.ndarray]) -> _GenreLayout:
        sizes = [len(m) for m in members]
        order = np.concatenate(members).astype(np.int64) if members else np.empty(0, np.int64)
        return cls(order, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))


def precompute_user_scores(
    *,
    num_users: int,
    user_samples: Callable[[int], tuple[np.ndarray, np.ndarray]],
    watched: Callable[[int], np.ndarray],
    movie_embeddings: np.ndarray,
    movie_bias: np.ndarray,
    genre_members: Sequence[np.ndarray] = (),
    chunk_users: int = 256,
    should_stop: Callable[[], bool] = lambda: False,
) -> UserScores:
    """Unfiltered picks [N, S*C], picks within each genre [N, G, S*C] (when `genre_members`,
    each genre's ascending movie indices, is given) and posterior-mean watch probabilities
    [N, M] of every user.

    Works in chunks of users so memory stays bounded: per chunk, one [K, n, D+1] copy of the
    users' samples and one [n, M] score matrix per sample. The movie bias rides in the matmul
    as an extra embedding dimension, and watched movies are masked by flat index after the
    probabilities are accumulated (as sigmoid(x) = (1 + tanh(x / 2)) / 2, `common.picks`).
    Genre picks come from a second product against the genres' movies laid side by side
    (`_GenreLayout`), so each genre's pick is an argmax over a contiguous slice; a genre
    whose every movie the user watched gets `NO_PICK`. Ties go to the lowest movie index.
    `should_stop` is checked between chunks; it returning True raises `InterruptedError`.
    """
    num_samples, num_movies, dim = movie_embeddings.shape
    out = np.empty((num_users, num_samples), dtype=pick_dtype(num_movies))
    means = np.empty((num_users, num_movies), dtype=np.float32)
    layout = _GenreLayout.of(genre_members)
    genre_out = (
        np.empty((num_users, len(genre_members), num_samples), dtype=out.dtype)
        if genre_members
        else None
    )
    ones = np.ones((num_samples, 1), dtype=np.float32)
    for start in range(0, num_users, chunk_users):
        if should_stop():
            raise InterruptedError("precomputation stopped")
        users = range(start, min(start + chunk_users, num_users))
        n = len(users)
        u_aug = np.empty((num_samples, n, dim + 1), dtype=np.float32)
        u_bias = np.empty((num_samples, n, 1), dtype=np.float32)
        flat: list[np.ndarray] = []
        no_choice = np.zeros(n, dtype=bool)
        for row, i in enumerate(users):
            emb, bias = user_samples(i)
            u_aug[:, row, :dim] = emb
            u_aug[:, row, dim:] = ones
            u_bias[:, row, 0] = bias
            seen = np.asarray(watched(i), dtype=np.intp)
            flat.append(row * num_movies + seen)
            no_choice[row] = seen.size >= num_movies
        mask_idx = np.concatenate(flat) if flat else np.empty(0, np.intp)
        scores = np.empty((n, num_movies), dtype=np.float32)
        half = np.empty_like(scores)
        tanh_sum = np.zeros((n, num_movies), dtype=np.float32)
        scores_flat = scores.reshape(-1)
        v_aug = np.empty((num_movies, dim + 1), dtype=np.float32)
        if genre_out is not None:
            seen_mask = np.zeros(n * num_movies, dtype=bool)
            seen_mask[mask_idx] = True
            genre_mask_idx = np.flatnonzero(seen_mask.reshape(n, num_movies)[:, layout.order])
            genre_scores = np.empty((n, layout.order.size), dtype=np.float32)
            rows = np.arange(n)
        for k in range(num_samples):
            v_aug[:, :dim] = movie_embeddings[k]
            v_aug[:, dim] = movie_bias[k]
            np.matmul(u_aug[k], v_aug.T, out=scores)
            np.add(scores, u_bias[k], out=half)
            half *= 0.5
            np.tanh(half, out=half)
            tanh_sum += half
            scores_flat[mask_idx] = -np.inf
            out[start : start + n, k] = scores.argmax(axis=1)
            if genre_out is not None:
                np.matmul(u_aug[k], v_aug[layout.order].T, out=genre_scores)
                genre_scores.reshape(-1)[genre_mask_idx] = -np.inf
                for g in range(len(genre_members)):
                    segment = genre_scores[:, layout.bounds[g] : layout.bounds[g + 1]]
                    best = segment.argmax(axis=1)
                    genre_out[start : start + n, g, k] = np.where(
                        segment[rows, best] == -np.inf,
                        NO_PICK,
                        layout.order[layout.bounds[g] + best],
                    )
        out[start : start + n][no_choice] = NO_PICK
        means[start : start + n] = 0.5 + 0.5 * tanh_sum / num_samples
    return UserScores(out, means, genre_out)


def picks_for_user(
    *,
    user_embeddings: np.ndarray,
    movie_features: np.ndarray,
    movie_bias: np.ndarray,
    eligible: np.ndarray,
    superset_picks: np.ndarray | None = None,
    movie_major: np.ndarray | None = None,
) -> np.ndarray:
    """Picks of one user over candidate movies `eligible` (bool [M]), [S*C] with NO_PICK.

    `movie_features` [S*C, D+1, M] holds each sample's V^T (its last row is unused here) and
    `movie_bias` [S*C, M] its v: the fold-in's sample-major layout (`common.foldin`), read
    one sample at a time. `eligible` must exclude watched movies. With `superset_picks`, the
    user's picks over a superset of `eligible` (the unfiltered picks, or one genre's), samples
    whose pick is eligible keep it (the best movie of the superset is then also the best
    eligible one) and only the other samples are scored. With `movie_major` samples and few
    candidates, only the candidates' contiguous blocks are read.
    """
    num_samples, dim = user_embeddings.shape
    candidates = np.flatnonzero(eligible)
    if candidates.size == 0:
        return np.full(num_samples, NO_PICK, dtype=np.int32)
    if superset_picks is None:
        rows = np.arange(num_samples)
        picks = np.empty(num_samples, dtype=np.int32)
    else:
        picks = superset_picks.astype(np.int32)
        resolved = (picks < 0) | eligible[np.maximum(picks, 0)]
        rows = np.flatnonzero(~resolved)
        if rows.size == 0:
            return picks
    if movie_major is not None and candidates.size * 4 <= eligible.size:
        picks[rows] = _picks_from_blocks(user_embeddings, movie_major, candidates)[rows]
        return picks
    penalty = np.where(eligible, np.float32(0), np.float32(-np.inf))
    if rows.size > num_samples // 2:  # most samples: one batched product over all of them
        scores = np.matmul(user_embeddings[:, None, :], movie_features[:, :dim])[:, 0]
        scores += movie_bias
        scores += penalty  # one broadcast pass
        picks[rows] = scores[rows].argmax(axis=1)
        return picks
    for k in rows.tolist():  # a few samples: one vector-matrix product each
        scores = user_embeddings[k] @ movie_features[k, :dim]
        scores += movie_bias[k]
        scores += penalty
        picks[k] = scores.argmax()
    return picks


def union_picks(
    genre_picks: np.ndarray, user_embeddings: np.ndarray, movie_major: np.ndarray
) -> np.ndarray:
    """Picks over a union of genres, [S*C], from each genre's picks [G', S*C].

    Per sample, the best movie of a union is the best of the genres' best movies: their
    logits are read from `movie_major` ([M, S*C, D+1], one (movie, sample) row each) and
    compared, ties going to the lowest movie index. `NO_PICK` where no genre has a pick.
    """
    num_samples, dim = user_embeddings.shape
    picks = genre_picks.astype(np.intp)
    valid = picks >= 0
    rows = movie_major[np.where(valid, picks, 0), np.arange(num_samples)]  # [G', S*C, D+1]
    logits = np.einsum("gkd,kd->gk", rows[..., :dim], user_embeddings) + rows[..., dim]
    logits = np.where(valid, logits, -np.inf)
    best = logits.max(axis=0)
    lowest = np.where(valid & (logits == best), picks, np.iinfo(np.intp).max).min(axis=0)
    return np.where(valid.any(axis=0), lowest, NO_PICK).astype(np.int32)


def movie_major_samples(movie_embeddings: np.ndarray, movie_bias: np.ndarray) -> np.ndarray:
    """[M, S*C, D+1] float32: each movie's embedding and bias samples in one contiguous block,
    so the probabilities of a few movies read a few blocks instead of S*C scattered rows."""
    num_samples, num_movies, dim = movie_embeddings.shape
    out = np.empty((num_movies, num_samples, dim + 1), dtype=np.float32)
    for start in range(0, num_samples, 64):
        stop = min(start + 64, num_samples)
        out[:, start:stop, :dim] = movie_embeddings[start:stop].transpose(1, 0, 2)
        out[:, start:stop, dim] = movie_bias[start:stop].T
    return out


def _picks_from_blocks(
    user_embeddings: np.ndarray, movie_major: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Best of `candidates` per sample from their movie-major blocks, 64 movies at a time
    (a running maximum keeps memory small; strict `>` keeps the lowest index on ties)."""
    num_samples, dim = user_embeddings.shape
    best = np.full(num_samples, -np.inf, dtype=np.float32)
    picks = np.full(num_samples, NO_PICK, dtype=np.int32)
    samples = np.arange(num_samples)
    for start in range(0, candidates.size, 64):
        chunk = candidates[start : start + 64]
        block = movie_major[chunk]  # [c, K, D+1], contiguous per movie
        scores = np.einsum("ckd,kd->ck", block[:, :, :dim], user_embeddings)
        scores += block[:, :, dim]
        top = scores.argmax(axis=0)
        value = scores[top, samples]
        better = value > best
        best[better] = value[better]
        picks[better] = chunk[top[better]]
    return picks


def user_logits(
    user_embeddings: np.ndarray, user_bias: np.ndarray, movie_major: np.ndarray, movies: np.ndarray
) -> np.ndarray:
    """Logits U.V + u + v of `movies` for every sample, float32 [m, S*C].

    `movie_major` is `movie_major_samples(...)`: [M, S*C, D+1], embedding then bias.
    """
    num_samples, dim = user_embeddings.shape
    user_aug = np.empty((num_samples, dim + 1), dtype=np.float32)  # [U, 1] . [V, v] = U.V + v
    user_aug[:, :dim] = user_embeddings
    user_aug[:, dim] = 1.0
    logits = np.einsum("mkd,kd->mk", movie_major[movies], user_aug)  # [m, K]
    logits += user_bias
    return logits


def watch_probabilities(
    *,
    user_embeddings: np.ndarray,
    user_bias: np.ndarray,
    movie_major: np.ndarray,
    movies: np.ndarray,
    interval: float = 0.90,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and central credible interval of sigmoid(U.V + u + v) for `movies`
    (`common.picks.probability_summary`), float64 [m] each."""
    if movies.size == 0:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty, empty
    logits = user_logits(user_embeddings, user_bias, movie_major, movies)
    return probability_summary(logits, interval=interval)


def summarize_picks(
    picks: np.ndarray, *, catalog: Catalog, num_movies: int
) -> tuple[np.ndarray, list[GenreVote], PickSpread, int]:
    """Pick counts [M], the picks' first-genre breakdown, uncertainty, samples with a pick."""
    num_samples = picks.size
    valid = picks[picks >= 0].astype(np.intp)
    counts = count_picks(picks, num_movies)
    genre_counts = np.bincount(catalog.first_genre_code[valid], minlength=len(catalog.genre_names))
    genres = [
        GenreVote(catalog.genre_names[g], int(genre_counts[g]), genre_counts[g] / num_samples)
        for g in np.lexsort((np.arange(genre_counts.size), -genre_counts))
        if genre_counts[g] > 0
    ]
    entropy = float(pick_entropy_bits(counts))
    uncertainty = PickSpread(
        None if np.isnan(entropy) else entropy,
        int(np.count_nonzero(counts)),
        float(counts.max(initial=0) / num_samples) if num_samples else 0.0,
    )
    return counts, genres, uncertainty, int(valid.size)


def recommend(
    picks: np.ndarray,
    *,
    catalog: Catalog,
    user_embeddings: np.ndarray,
    user_bias: np.ndarray,
    movie_major: np.ndarray,
    mean_probability: np.ndarray,
    candidates: np.ndarray,
    rank: Rank,
    k: int,
) -> RecommendationResult:
    """Everything `/recommend` reports, from one user's picks and samples.

    picks: [S*C] over `candidates` (bool [M]: unwatched, in the genre filter, not excluded);
    mean_probability: [M] posterior-mean watch probabilities. Returns exactly
    min(k, candidates) movies ranked by `rank` (`common.picks.rank_movies`), each with its
    pick count and 90% credible interval.
    """
    num_samples = picks.size
    num_movies = movie_major.shape[0]
    counts, genres, uncertainty, num_picked = summarize_picks(
        picks, catalog=catalog, num_movies=num_movies
    )
    order = rank_movies(
        candidates, counts=counts, mean_probability=mean_probability, rank=rank, k=k
    )
    _, low, high = watch_probabilities(
        user_embeddings=user_embeddings,
        user_bias=user_bias,
        movie_major=movie_major,
        movies=order,
    )
    recs = [
        Recommendation(
            j,
            int(counts[j]),
            int(counts[j]) / num_samples,
            float(mean_probability[j]),
            float(low[i]),
            float(high[i]),
        )
        for i, j in enumerate(order.tolist())
    ]
    return RecommendationResult(
        num_samples, num_picked, int(np.count_nonzero(candidates)), recs, genres, uncertainty
    )
